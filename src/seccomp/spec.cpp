#include "seccomp/spec.hpp"

#include <sched.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "seccomp/catalog.hpp"

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

namespace stockade::seccomp {

const std::vector<ArgRule>& core_arg_rules() {
    // Compared on the low 32 bits where the kernel truncates the argument to an
    // int (ioctl's request, socket's domain, personality), so a value with high
    // bits set cannot slip past (CVE-2019-10063).
    static const std::vector<ArgRule> rules = {
        {"clone", 0, CLONE_NEWNS, CLONE_NEWNS, "CLONE_NEWNS"},
        {"clone", 0, CLONE_NEWCGROUP, CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
        {"clone", 0, CLONE_NEWUTS, CLONE_NEWUTS, "CLONE_NEWUTS"},
        {"clone", 0, CLONE_NEWIPC, CLONE_NEWIPC, "CLONE_NEWIPC"},
        {"clone", 0, CLONE_NEWUSER, CLONE_NEWUSER, "CLONE_NEWUSER"},
        {"clone", 0, CLONE_NEWPID, CLONE_NEWPID, "CLONE_NEWPID"},
        {"clone", 0, CLONE_NEWNET, CLONE_NEWNET, "CLONE_NEWNET"},
        {"socket", 0, 0xffffffffu, AF_NETLINK, "AF_NETLINK"},
        {"socket", 0, 0xffffffffu, AF_PACKET, "AF_PACKET"},
        {"socket", 0, 0xffffffffu, AF_VSOCK, "AF_VSOCK"},
        {"socketpair", 0, 0xffffffffu, AF_NETLINK, "AF_NETLINK"},
        {"socketpair", 0, 0xffffffffu, AF_PACKET, "AF_PACKET"},
        {"socketpair", 0, 0xffffffffu, AF_VSOCK, "AF_VSOCK"},
        {"ioctl", 1, 0xffffffffu, TIOCSTI, "TIOCSTI"},
        {"prctl", 0, 0xffffffffu, PR_SET_SECCOMP, "PR_SET_SECCOMP"},
        // The init shares the program's uid: its limits are out of the program's reach.
        {"prlimit64", 0, 0xffffffffu, 1, "the init (pid 1)"},
        {"ioctl", 1, 0xffffffffu, TIOCLINUX, "TIOCLINUX"},
        {"personality", 0, ADDR_NO_RANDOMIZE, ADDR_NO_RANDOMIZE, "ADDR_NO_RANDOMIZE"},
        {"personality", 0, READ_IMPLIES_EXEC, READ_IMPLIES_EXEC, "READ_IMPLIES_EXEC"},
        {"personality", 0, MMAP_PAGE_ZERO, MMAP_PAGE_ZERO, "MMAP_PAGE_ZERO"},
        {"personality", 0, ADDR_COMPAT_LAYOUT, ADDR_COMPAT_LAYOUT, "ADDR_COMPAT_LAYOUT"},
    };
    return rules;
}

namespace {
bool has_arg_rules(const std::string& name) {
    for (const auto& r : core_arg_rules())
        if (name == r.syscall) return true;
    return false;
}
}  // namespace

std::string canonical(const Spec& s) {
    std::string c = "v1 enabled=" + std::to_string(s.enabled) +
                    " action=" + std::to_string(static_cast<int>(s.default_action)) +
                    " learn=" + std::to_string(s.learn) + " allow=";
    for (int n : s.allow) c += std::to_string(n) + ",";
    c += " deny=";
    for (int n : s.deny) c += std::to_string(n) + ",";
    c += " families=";
    for (int n : s.socket_families) c += std::to_string(n) + ",";
    c += " unsafe=";
    for (const auto& u : s.unsafe) c += u + ",";
    return c;
}

Decision decide(const Spec& spec, int nr, const uint64_t args[6]) {
    std::string name = name_of(nr);
    if (name == "memfd_create" && !(args[1] & kMfdNoexecSeal) && !spec.learn &&
        std::binary_search(spec.allow.begin(), spec.allow.end(), nr)) {
        Decision d;
        d.sealed_memfd = true;
        d.err = (args[1] & kMfdExec) ? EPERM : 0;  // an executable memfd is what is refused
        d.core = true;
        d.kill = d.err && spec.default_action == DefaultAction::Kill;
        return d;
    }
    // Kill mode kills for every refusal, the core's included.
    const bool kill_mode = spec.default_action == DefaultAction::Kill;
    if (const CoreRule* core = core_rule(name, spec.unsafe)) {
        if (!has_arg_rules(name)) return {core->err, true, kill_mode};
        for (const auto& r : core_arg_rules())
            if (name == r.syscall && (args[r.arg] & r.mask) == r.value) return {core->err, true, kill_mode};
        // A form the core allows but the profile's argument rules do not
        // (a socket family outside socket_families, say).
        if (name == "socket" || name == "socketpair")
            return {EAFNOSUPPORT, false, spec.default_action == DefaultAction::Kill};
    }
    if (spec.learn) return {-1, false, false};
    bool kill = spec.default_action == DefaultAction::Kill;
    if (std::binary_search(spec.deny.begin(), spec.deny.end(), nr)) return {spec.deny_errno, false, kill};
    return {spec.default_errno, false, kill};
}

}  // namespace stockade::seccomp
