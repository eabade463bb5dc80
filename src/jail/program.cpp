#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "jail/caps.hpp"
#include "jail/exec_rules.hpp"
#include "jail/jail.hpp"
#include "jail/rlimits.hpp"
#include "jail_interface.hpp"
#include "seccomp/filter.hpp"
#include "util/error.hpp"
#include "util/clock.hpp"
#include "util/exit_codes.hpp"

namespace stockade::jail {
namespace {

void reset_signals() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP is fine
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// PATH lookup inside the jail, as execvp would do it, but with the jail's PATH
// rather than ours.
std::string find_program(const Plan& plan, const std::string& name) {
    if (name.find('/') != std::string::npos) return name;
    size_t pos = 0;
    const std::string& path = plan.path_var;
    while (pos <= path.size()) {
        size_t colon = path.find(':', pos);
        if (colon == std::string::npos) colon = path.size();
        std::string dir = path.substr(pos, colon - pos);
        if (dir.empty()) dir = ".";
        std::string cand = dir + "/" + name;
        if (::access(cand.c_str(), X_OK) == 0) return cand;
        pos = colon + 1;
    }
    return {};
}

bool allowed(const Plan& plan, const std::string& path) {
    if (plan.exec_allow.empty()) return true;  // the profile's own python
    char real[PATH_MAX];
    bool have_real = ::realpath(path.c_str(), real) != nullptr;
    for (const auto& pat : plan.exec_allow) {
        if (::fnmatch(pat.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
        if (have_real && ::fnmatch(pat.c_str(), real, FNM_PATHNAME) == 0) return true;
    }
    return false;
}

}  // namespace

void exec_program(const Plan& plan, const ChildFds& fds) {
    // The report socket moves to fd 3 and the filter pipe to 4 (both
    // close-on-exec), a warm jail's control socket to 5, then everything above is closed: nothing the caller or
    // stockade had open reaches the program. Via high fds first, so neither
    // move can land on the other.
    // Output through the supervisor's relay when the profile caps it.
    if ((fds.out >= 0 && ::dup2(fds.out, 1) < 0) || (fds.err >= 0 && ::dup2(fds.err, 2) < 0))
        ::_exit(kExitStockadeFailed);
    // The caller's terminal fds become the jail's own pseudo-terminal.
    for (int i = 0; i < 3 && fds.tty >= 0; ++i)
        if ((plan.terminal & (1u << i)) && ::dup2(fds.tty, i) < 0) ::_exit(kExitStockadeFailed);
    int r = ::fcntl(fds.report, F_DUPFD_CLOEXEC, 10);
    int f = ::fcntl(fds.filter, F_DUPFD_CLOEXEC, 10);
    int c = fds.control >= 0 ? ::fcntl(fds.control, F_DUPFD_CLOEXEC, 10) : -1;
    if (r < 0 || f < 0 || ::dup3(r, kReportFd, O_CLOEXEC) < 0 || ::dup3(f, kFilterFd, O_CLOEXEC) < 0)
        ::_exit(kExitStockadeFailed);
    if (fds.control >= 0 && (c < 0 || ::dup2(c, kControlFd) < 0))
        ::_exit(kExitStockadeFailed);  // dup2: kept across exec
    ::close_range(fds.control >= 0 ? kControlFd + 1 : kFilterFd + 1, ~0U, 0);
    const int rfd = kReportFd;
    try {
        reset_signals();
        // A new session: no controlling terminal, so TIOCSTI cannot push input
        // into the caller's shell, and the jail's process group is its own.
        check(::setsid(), "setsid");
        // The jail's pty (never the caller's terminal) as the controlling
        // terminal: Ctrl-C and job control work inside, and TIOCSTI stays refused.
        for (int i = 0; i < 3; ++i)
            if (plan.terminal & (1u << i)) {
                check(::ioctl(i, TIOCSCTTY, 0), "ioctl TIOCSCTTY", "the jail's terminal");
                break;
            }
        ::umask(022);
        if (::chdir(plan.cwd.c_str()) < 0) throw_sys("working directory", plan.cwd + " (run.cwd / --cwd)");

        std::string path = find_program(plan, plan.argv.at(0));
        if (path.empty())
            fail(rfd, WireMsg::ExecError, ENOENT,
                 "exec " + plan.argv[0] + ": not found in the jail's PATH (" + plan.path_var + ")", kExitNotFound);
        if (!allowed(plan, path)) {
            std::string pats;
            for (auto& p : plan.exec_allow) pats += (pats.empty() ? "" : ", ") + p;
            fail(rfd, WireMsg::ExecError, EACCES,
                 "exec " + path + ": not allowed by the profile (run.exec_allow = [" + pats + "])", kExitCannotExecute);
        }

        phase(rfd, plan.timings, "program: session, fds, cwd, lookup");
        const std::vector<Rlimit> limits = rlimits_for(plan.limits, fds.cgroup);
        check(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS");
        // Every later execve too, not just this one. The supervisor decided
        // whether the kernel can (Landlock ABI 2: ABI 1 cannot allow moving
        // files between directories), and said so in the result if not.
        // A template's tasks apply the rules themselves (serve/runner.py):
        // Landlock would refuse them the mounts that make their jails.
        if (fds.exec_rules && !plan.template_program) restrict_exec(plan.exec_rules, path);
        drop_all_capabilities();
        // Compiled by the supervisor while this jail was being built.
        seccomp::Compiled filters = seccomp::read_from(kFilterFd);
        ::close(kFilterFd);

        std::vector<char*> argv, envp;
        for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        for (const auto& e : plan.envp) envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);

        // The filter goes in last: from here on only the profile's syscalls (and
        // this sendmsg, close and execve) pass. The listener goes to the supervisor.
        WireMsg ready;
        ready.type = WireMsg::ExecReady;
        ready.t_ns = monotonic_ns();
        // Late, after the last allocation: RLIMIT_AS must not starve stockade's own
        // steps (or a sanitizer's runtime) before the program starts.
        apply(limits);
        int listener = seccomp::install(filters);
        send(rfd, ready, &listener, listener >= 0 ? 1 : 0);
        if (listener >= 0) ::close(listener);
        ::execve(path.c_str(), argv.data(), envp.data());
        int err = errno;
        fail(rfd, WireMsg::ExecError, err, "exec " + path + ": " + std::strerror(err),
             err == ENOENT ? kExitNotFound : kExitCannotExecute);
    } catch (const Error& e) {
        fail(rfd, WireMsg::SetupError, e.code(), e.what(), kExitStockadeFailed);
    } catch (const std::exception& e) {
        fail(rfd, WireMsg::SetupError, 0, e.what(), kExitStockadeFailed);
    }
}

}  // namespace stockade::jail
