#include "seccomp/filter.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "jail_abi.hpp"
#include "seccomp/catalog.hpp"
#include "seccomp/families.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::seccomp {
namespace {

using Ctx = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

void lib_check(int rc, const std::string& what) {
    if (rc < 0) throw_sys_errno(-rc, "seccomp: " + what);
}

Ctx new_ctx(uint32_t default_action) {
    Ctx ctx(seccomp_init(default_action), seccomp_release);
    if (!ctx) throw Error("seccomp: cannot initialise a filter");
    // Any other ABI (i386 via int 0x80, x32) kills the process outright.
    lib_check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad-arch action");
    // A binary search over syscall numbers instead of a linear chain.
    lib_check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "optimize");
    return ctx;
}

std::vector<sock_filter> export_bpf(scmp_filter_ctx ctx) {
    // libseccomp 2.5 exports only to an fd; a memfd keeps it in memory.
    UniqueFd fd(::memfd_create("stockade-bpf", MFD_CLOEXEC));
    if (!fd) throw_sys("memfd_create", "(seccomp export)");
    lib_check(seccomp_export_bpf(ctx, fd.get()), "export");
    off_t size = ::lseek(fd.get(), 0, SEEK_END);
    if (size <= 0 || size % sizeof(sock_filter)) throw Error("seccomp: exported filter has a bad size");
    std::vector<sock_filter> insns(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(fd.get(), insns.data(), static_cast<size_t>(size), 0) != size) throw_sys("read", "(seccomp export)");
    return insns;
}

bool lifted(const Spec& spec, const std::string& name) { return find_core(name) && !core_rule(name, spec.unsafe); }

void add(scmp_filter_ctx ctx, uint32_t action, int nr, const std::string& what, unsigned n = 0, scmp_arg_cmp cmp = {}) {
    int rc = n ? seccomp_rule_add(ctx, action, nr, 1, cmp) : seccomp_rule_add(ctx, action, nr, 0);
    lib_check(rc, what);
}

scmp_arg_cmp low32_eq(unsigned arg, uint64_t value) { return SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, value); }

// "Any 32-bit value but these" as a union of masked equalities, since a rule
// can hold one comparison per argument and libseccomp drops conditional rules
// next to an unconditional one. For excluded values E: a value is allowed when
// it differs from E[0] in a bit where all of E agree (one rule per such bit),
// or agrees on all those bits but its remaining bits match no member of E.
void allow_all_but(scmp_filter_ctx ctx, int nr, unsigned arg, const std::vector<uint32_t>& excluded,
                   const std::string& what) {
    uint32_t differ = 0;
    for (uint32_t e : excluded) differ |= e ^ excluded[0];
    for (int b = 0; b < 32; ++b) {
        uint32_t bit = 1u << b;
        if (differ & bit) continue;
        add(ctx, SCMP_ACT_ALLOW, nr, what, 1, SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, bit, ~excluded[0] & bit));
    }
    // The free bits take every pattern not used by an excluded value.
    std::vector<uint32_t> free_bits;
    for (int b = 0; b < 32; ++b)
        if (differ & (1u << b)) free_bits.push_back(1u << b);
    for (uint32_t pattern = 0; pattern < (1u << free_bits.size()); ++pattern) {
        uint32_t v = excluded[0] & ~differ;
        for (size_t i = 0; i < free_bits.size(); ++i)
            if (pattern & (1u << i)) v |= free_bits[i];
        if (std::find(excluded.begin(), excluded.end(), v) == excluded.end())
            add(ctx, SCMP_ACT_ALLOW, nr, what, 1, low32_eq(arg, v));
    }
}

// "Any family" means every one stockade knows but the core's.
const std::vector<int>& all_families() {
    static const std::vector<int> f = [] {
        std::vector<int> v;
        for (const auto& fam : kFamilies)
            if (!fam.core) v.push_back(fam.number);
        return v;
    }();
    return f;
}

uint32_t default_action(const Spec& spec) {
    return spec.default_action == DefaultAction::Log && !spec.learn ? SCMP_ACT_LOG : SCMP_ACT_NOTIFY;
}

void build(scmp_filter_ctx ctx, const Spec& spec) {
    const std::vector<int> no_allow;
    const std::vector<int>& allow = spec.learn ? no_allow : spec.allow;
    auto allowed = [&](const std::string& name) {
        int nr = resolve(name);
        return nr >= 0 && std::binary_search(allow.begin(), allow.end(), nr);
    };

    // The core, explicitly, so it is refused even under default_action = "log"
    // (libseccomp rejects rules that repeat the default action, hence the check).
    const bool notify_by_default = default_action(spec) == SCMP_ACT_NOTIFY;
    // clone3 is answered in the kernel: its ENOSYS is glibc's cue to fall back
    // to clone, whose flags the filter can read, so it is routine, not a violation.
    if (int nr = resolve("clone3"); nr >= 0 && !lifted(spec, "clone3"))
        add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, "core clone3");
    for (const auto& rule : core()) {
        if (notify_by_default) break;
        if (std::string(rule.syscall) == "clone3") continue;
        if (lifted(spec, rule.syscall)) continue;
        int nr = resolve(rule.syscall);
        if (nr < 0) continue;
        if (!core_is_conditional(rule.syscall)) {
            add(ctx, SCMP_ACT_NOTIFY, nr, std::string("core ") + rule.syscall);
            continue;
        }
        for (const auto& a : core_arg_rules())
            if (a.syscall == std::string(rule.syscall))
                add(ctx, SCMP_ACT_NOTIFY, nr, std::string("core ") + rule.syscall + " " + a.what, 1,
                    SCMP_CMP(a.arg, SCMP_CMP_MASKED_EQ, a.mask, a.value));
    }

    // What the profile allows. The core's conditional syscalls get positive
    // rules for their harmless forms only.
    for (int nr : allow) {
        std::string name = name_of(nr);
        if (name == "memfd_create") {
            // Only sealed non-executable memfds pass in the kernel; the rest
            // are made that way by the supervisor (decide(): sealed_memfd).
            add(ctx, SCMP_ACT_ALLOW, nr, "allow memfd_create, noexec-sealed", 1,
                SCMP_A1(SCMP_CMP_MASKED_EQ, kMfdNoexecSeal, kMfdNoexecSeal));
            if (!notify_by_default)
                add(ctx, SCMP_ACT_NOTIFY, nr, "memfd_create, to be sealed", 1,
                    SCMP_A1(SCMP_CMP_MASKED_EQ, kMfdNoexecSeal, 0));
        } else if (!core_is_conditional(name) || lifted(spec, name)) {
            add(ctx, SCMP_ACT_ALLOW, nr, "allow " + name);
        } else if (name == "clone") {
            uint64_t ns = 0;
            for (const auto& a : core_arg_rules())
                if (name == a.syscall) ns |= a.mask;
            add(ctx, SCMP_ACT_ALLOW, nr, "allow clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0));
        } else if (name == "socket" || name == "socketpair") {
            const std::vector<int>& fams = spec.socket_families.empty() ? all_families() : spec.socket_families;
            for (int f : fams) add(ctx, SCMP_ACT_ALLOW, nr, "allow " + name, 1, low32_eq(0, static_cast<uint64_t>(f)));
        } else if (name == "ioctl" || name == "prctl" || name == "prlimit64") {
            std::vector<uint32_t> ex;
            unsigned arg = 0;
            for (const auto& a : core_arg_rules())
                if (name == a.syscall) {
                    ex.push_back(static_cast<uint32_t>(a.value));
                    arg = a.arg;
                }
            allow_all_but(ctx, nr, arg, ex, "allow " + name);
        } else if (name == "personality") {
            for (uint64_t v : {0x0ull, 0xffffffffull})
                add(ctx, SCMP_ACT_ALLOW, nr, "allow personality", 1, low32_eq(0, v));
        }
    }

    // The program's own last steps after the filter is in.
    for (const char* own : jail::kLastStepSyscalls)
        if (!allowed(own)) add(ctx, SCMP_ACT_ALLOW, resolve(own), std::string("allow ") + own);
    if (!allowed("sendmsg"))
        add(ctx, SCMP_ACT_ALLOW, resolve("sendmsg"), "allow sendmsg to the report socket", 1,
            SCMP_A0(SCMP_CMP_EQ, jail::kReportFd));
}

}  // namespace

Compiled compile(const Spec& spec) {
    Ctx ctx = new_ctx(default_action(spec));
    build(ctx.get(), spec);
    return Compiled{export_bpf(ctx.get())};
}

__attribute__((weak)) const std::vector<Precompiled>& precompiled_filters() {
    static const std::vector<Precompiled> none;
    return none;
}

Compiled compile_or_precompiled(const Spec& spec) {
    if (!spec.enabled) return {};
    const std::string key = canonical(spec);
    for (const auto& p : precompiled_filters())
        if (key == p.canonical) return Compiled{std::vector<sock_filter>(p.insns, p.insns + p.count)};
    return compile(spec);
}

std::string serialize(const Compiled& c) {
    uint32_t n = static_cast<uint32_t>(c.insns.size());
    std::string s(reinterpret_cast<const char*>(&n), sizeof n);
    s.append(reinterpret_cast<const char*>(c.insns.data()), n * sizeof(sock_filter));
    return s;
}

Compiled read_from(int fd) {
    auto read_exact = [&](void* buf, size_t len) {
        auto* p = static_cast<char*>(buf);
        while (len) {
            ssize_t n = ::read(fd, p, len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_sys("read", "seccomp filter from the supervisor");
            if (n == 0) throw Error("seccomp filter from the supervisor: the supervisor sent none");
            p += n;
            len -= static_cast<size_t>(n);
        }
    };
    Compiled c;
    uint32_t n = 0;
    read_exact(&n, sizeof n);
    if (n == 0) return c;  // [unsafe] disable_seccomp
    if (n > BPF_MAXINSNS) throw Error("seccomp filter from the supervisor: bad length");
    c.insns.resize(n);
    read_exact(c.insns.data(), n * sizeof(sock_filter));
    return c;
}

int install(const Compiled& c) {
    if (c.insns.empty()) return -1;
    struct sock_fprog fp {};
    fp.len = static_cast<unsigned short>(c.insns.size());
    fp.filter = const_cast<sock_filter*>(c.insns.data());
    long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fp);
    if (fd < 0) throw_sys("seccomp", "install filter");
    return static_cast<int>(fd);
}

}  // namespace stockade::seccomp
