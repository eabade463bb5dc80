#include "jail/caps.hpp"

#include <linux/securebits.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util/error.hpp"

namespace stockade::jail {

void switch_ids(uint32_t uid, uint32_t gid) {
    check(::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl", "PR_SET_KEEPCAPS");
    check(::setresgid(gid, gid, gid), "setresgid", std::to_string(gid));
    check(::setresuid(uid, uid, uid), "setresuid", std::to_string(uid));
    check(::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl", "PR_SET_KEEPCAPS");
    // A uid change may have cleared the effective set; permitted survived KEEPCAPS.
    cap_t c = cap_get_proc();
    if (!c) throw_sys("cap_get_proc");
    int rc = cap_fill(c, CAP_EFFECTIVE, CAP_PERMITTED);
    if (rc == 0) rc = cap_set_proc(c);
    int err = errno;
    cap_free(c);
    if (rc < 0) throw_sys_errno(err, "restore capabilities after setresuid");
}

void drop_all_capabilities() {
    // The bounding set needs CAP_SETPCAP to shrink, so it goes before the rest.
    for (cap_value_t cap = 0; cap < cap_max_bits(); ++cap) {
        if (cap_drop_bound(cap) < 0 && errno != EINVAL) throw_sys("drop bounding capability", std::to_string(cap));
    }
    if (cap_reset_ambient() < 0 && errno != EINVAL) throw_sys("clear ambient capabilities");
    const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                               SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                               SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    check(::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0), "prctl", "PR_SET_SECUREBITS");
    cap_t none = cap_init();
    if (!none) throw_sys("cap_init");
    int rc = cap_set_proc(none);
    int err = errno;
    cap_free(none);
    if (rc < 0) throw_sys_errno(err, "drop capabilities");
}

}  // namespace stockade::jail
