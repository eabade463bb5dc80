#include "doctor/checks.hpp"
#include "util/container.hpp"

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "profile/policy.hpp"
#include "supervise/cgroup.hpp"
#include "util/fd.hpp"
#include "util/kernel.hpp"

namespace stockade::doctor {
namespace {

using State = Check::State;

std::string read_text(const std::string& path) {
    std::string s = read_small_file(path);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

// ENOSYS means the kernel lacks the call; anything else means it has it.
bool has_syscall(long nr, long a = -1, long b = 0, long c = 0) {
    long r = ::syscall(nr, a, b, c, 0, 0);
    return !(r < 0 && errno == ENOSYS);
}

}  // namespace

const char* to_string(State s) {
    switch (s) {
        case State::Ok:
            return "ok";
        case State::Info:
            return "info";
        case State::Warn:
            return "warn";
        case State::Fail:
            return "FAIL";
    }
    return "?";
}

void check_kernel(std::vector<Check>& out) {
    struct utsname u {};
    ::uname(&u);
    out.push_back({"kernel", State::Info, std::string(u.release) + " " + u.machine, ""});
    std::string missing;
    for (const char* ns : {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"})
        if (!exists(std::string("/proc/self/ns/") + ns)) missing += std::string(missing.empty() ? "" : ", ") + ns;
    if (missing.empty())
        out.push_back({"namespaces", State::Ok, "user, mnt, pid, net, ipc, uts, cgroup", ""});
    else
        out.push_back({"namespaces", State::Fail, "missing: " + missing,
                       "a kernel built with CONFIG_NAMESPACES and each of those namespaces"});
    out.push_back({"time namespace", exists("/proc/self/ns/time") ? State::Ok : State::Info,
                   exists("/proc/self/ns/time") ? "available ([namespaces] time = true)"
                                                : "not in this kernel (5.6+); only [namespaces] time needs it",
                   ""});
    std::string actions = read_text("/proc/sys/kernel/seccomp/actions_avail");
    if (actions.find("user_notif") != std::string::npos)
        out.push_back({"seccomp", State::Ok, "filters with user notification (violations reported by name)", ""});
    else if (!actions.empty())
        out.push_back({"seccomp", State::Warn, "no user notification: refused calls are not reported by name",
                       "kernel 5.0 or later"});
    else
        out.push_back({"seccomp", State::Fail, "no seccomp filters", "a kernel with CONFIG_SECCOMP_FILTER"});
    int abi = landlock_abi();
    if (abi >= 2)
        out.push_back({"landlock", State::Ok, "ABI " + std::to_string(abi) + " (exec rules hold for every exec)", ""});
    else
        out.push_back(
            {"landlock", State::Warn,
             abi ? "ABI 1 only: exec rules cannot hold" : "not enabled: only the first program's path is checked",
             "kernel 5.19+ with Landlock in the LSM list (boot with lsm=landlock,... if it is built but off)"});
    bool tree = has_syscall(SYS_open_tree) && has_syscall(SYS_move_mount);
    out.push_back({"open_tree/move_mount", tree ? State::Ok : State::Info,
                   tree ? "available" : "absent (5.2+); classic mount(2) is used", ""});
    bool c3 = has_syscall(SYS_clone3, 0, 0);
    const std::string engine = container_engine();
    out.push_back({"clone3", c3 ? State::Ok : State::Fail,
                   c3               ? "available (CLONE_INTO_CGROUP on cgroup v2: no migration per run)"
                   : engine.empty() ? "absent"
                                    : "refused by the " + engine + " container's seccomp profile",
                   c3               ? ""
                   : engine.empty() ? "kernel 5.7 or later"
                                    : container_seccomp_fix(engine)});
}

void check_userns_sysctls(std::vector<Check>& out) {
    std::string max = read_text("/proc/sys/user/max_user_namespaces");
    if (max.empty() || max == "0")
        out.push_back({"user.max_user_namespaces", State::Fail, max.empty() ? "unreadable" : "0",
                       "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)"});
    else
        out.push_back({"user.max_user_namespaces", State::Ok, max, ""});
    std::string deb = read_text("/proc/sys/kernel/unprivileged_userns_clone");
    if (!deb.empty())
        out.push_back({"kernel.unprivileged_userns_clone", deb == "0" && ::geteuid() != 0 ? State::Fail : State::Ok,
                       deb, deb == "0" && ::geteuid() != 0 ? "sysctl -w kernel.unprivileged_userns_clone=1" : ""});
    std::string aa = read_text("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    if (!aa.empty()) {
        std::string profiles = read_text("/sys/kernel/security/apparmor/profiles");
        bool loaded = profiles.find("stockade") != std::string::npos;
        if (aa == "0" || ::geteuid() == 0)
            out.push_back({"apparmor userns restriction", State::Ok,
                           "off (" + aa + ")" + (::geteuid() == 0 ? ", or root" : ""), ""});
        else if (loaded)
            out.push_back(
                {"apparmor userns restriction", State::Ok, "on; the stockade AppArmor profile is loaded", ""});
        else
            out.push_back({"apparmor userns restriction", State::Fail,
                           "kernel.apparmor_restrict_unprivileged_userns=1 and no stockade profile is loaded "
                           "(\"setting up uid map: Permission denied\")",
                           "sudo install -m 644 packaging/apparmor/stockade /etc/apparmor.d/stockade && "
                           "sudo apparmor_parser -r /etc/apparmor.d/stockade (the .deb does this)"});
    }
}

void check_cgroups(std::vector<Check>& out, bool clean) {
    bool v1 = false, v2 = false;
    std::ifstream mi("/proc/self/mountinfo");
    for (std::string line; std::getline(mi, line);) {
        if (line.find(" - cgroup2 ") != std::string::npos)
            v2 = true;
        else if (line.find(" - cgroup ") != std::string::npos)
            v1 = true;
    }
    out.push_back({"cgroup layout", State::Info,
                   v1 && v2 ? "hybrid (v1 controllers, a v2 tree)"
                   : v2     ? "v2"
                   : v1     ? "v1"
                            : "none mounted",
                   ""});
    profile::Limits l;
    l.memory = 64 << 20;
    l.pids = 16;
    l.cpus = 1;
    std::string why;
    auto cg = supervise::create_cgroup(l, why, clean);
    if (cg) {
        std::string how = ::geteuid() == 0 ? "as root" : "delegated to this user";
        if (::geteuid() != 0 && read_text("/proc/self/cgroup").find("/stockade-") != std::string::npos)
            how = "in a delegated scope from the user's systemd (asked over D-Bus)";
        out.push_back({"cgroup limits", State::Ok,
                       std::string("memory, pids, cpu through cgroup ") + cg->version() + ", " + how, ""});
    } else {
        std::string fix = "run in a delegated cgroup: systemd-run --user --scope -p Delegate=yes stockade ...";
        if (::geteuid() != 0 && !exists("/run/user/" + std::to_string(::getuid()) + "/systemd"))
            fix += "; with no user manager running, start one at boot: sudo loginctl enable-linger " +
                   std::to_string(::getuid());
        out.push_back({"cgroup limits", State::Warn, why + " (limits degrade to rlimits)", fix});
    }
    cg.reset();
    auto stale = supervise::stale_cgroups(clean);
    if (stale.empty())
        out.push_back({"stale cgroups", State::Ok, "none", ""});
    else
        out.push_back(
            {"stale cgroups", clean ? State::Ok : State::Warn,
             std::to_string(stale.size()) + (clean ? " removed" : " left by killed stockades, e.g. " + stale.front()),
             clean ? "" : "stockade doctor --clean"});
}

void check_container(std::vector<Check>& out) {
    const std::string engine = container_engine();
    if (engine.empty()) {
        out.push_back({"container", State::Ok, "not in a container", ""});
        return;
    }
    out.push_back({"container", State::Info, "inside " + engine, ""});
    // A container's own seccomp filter refuses unshare/clone with namespace flags.
    std::string status = read_text("/proc/self/status");
    bool filtered = status.find("Seccomp:\t2") != std::string::npos;
    long r = ::syscall(SYS_unshare, 0);  // flags 0: no effect, but a filter that refuses unshare says so
    bool unshare_refused = r < 0 && (errno == EPERM || errno == ENOSYS);
    if (filtered && unshare_refused)
        out.push_back({"container seccomp", State::Fail,
                       "the container's seccomp profile refuses unshare/clone with namespace flags",
                       container_seccomp_fix(engine)});
    else
        out.push_back(
            {"container seccomp", State::Ok, filtered ? "a filter, which lets namespaces through" : "none", ""});
    // Masked /proc (read-only /proc/sys, files over /proc/kcore...): a new procfs cannot be mounted.
    std::ifstream mi("/proc/self/mountinfo");
    bool masked = false;
    for (std::string line; std::getline(mi, line);)
        if (line.find(" /proc/kcore ") != std::string::npos || line.find(" /proc/sys ro") != std::string::npos)
            masked = true;
    // No jail can start there (its own /proc and /proc/sys are needed): a failure, as the try-run shows.
    if (masked)
        out.push_back({"container /proc", State::Fail, "/proc is masked: the jail's own procfs cannot be mounted",
                       container_proc_fix(engine)});
}

}  // namespace stockade::doctor
