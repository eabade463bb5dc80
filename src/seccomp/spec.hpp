// The resolved syscall policy of one run: numbers, not names. Built by
// plan/seccomp_spec from the profile, compiled into BPF by filter.*, enforced for refusals by
// the supervisor (notify.*).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace stockade::seccomp {

enum class DefaultAction { Errno, Kill, Log };

struct Spec {
    bool enabled = true;
    DefaultAction default_action = DefaultAction::Errno;
    int default_errno = 0;  // for Errno
    int deny_errno = 0;
    std::vector<int> allow;            // sorted, unique; the core's unconditional syscalls never appear
    std::vector<int> deny;             // sorted, unique: refused with deny_errno
    std::vector<int> socket_families;  // socket()/socketpair() domains allowed; empty = any the core allows
    std::vector<std::string> unsafe;   // core rules lifted by [unsafe]
    bool learn = false;                // refusals other than the core's are recorded and let through

    bool operator==(const Spec&) const = default;
};

// Everything about a Spec that shapes its BPF, as one string: the key under
// which build-time compiled filters are found.
std::string canonical(const Spec& s);

// An argument condition of the core: the call is refused when (arg & mask) == value.
struct ArgRule {
    const char* syscall;
    unsigned arg;
    uint64_t mask;
    uint64_t value;
    const char* what;  // "CLONE_NEWUSER", "AF_NETLINK", "TIOCSTI"
};
const std::vector<ArgRule>& core_arg_rules();

// The errno the supervisor answers a refused call with, and whether the core
// (rather than the profile) refused it. -1: let it through (learn mode).
struct Decision {
    int err = 0;
    bool core = false;
    bool kill = false;
    // memfd_create without MFD_NOEXEC_SEAL: the supervisor makes the memfd
    // itself, sealed non-executable, and hands it in as the call's result.
    bool sealed_memfd = false;
};

// Flags from Linux 6.3 that Debian 12's headers lack.
constexpr uint64_t kMfdNoexecSeal = 0x0008;
constexpr uint64_t kMfdExec = 0x0010;

Decision decide(const Spec& spec, int nr, const uint64_t args[6]);

}  // namespace stockade::seccomp
