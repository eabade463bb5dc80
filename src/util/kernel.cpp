#include "util/kernel.hpp"

#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace stockade {

int landlock_abi() {
    long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : static_cast<int>(v);
}

bool host_has_memfd_noexec() { return ::access("/proc/sys/vm/memfd_noexec", F_OK) == 0; }

}  // namespace stockade
