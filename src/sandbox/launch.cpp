#include "sandbox/launch.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/jail.hpp"
#include "sandbox/wire.hpp"
#include "seccomp/filter.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::sandbox {
namespace {

constexpr int kRelayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// The jail's init, owned through a pidfd: killed and reaped on every path out
// of launch(), so an exception never leaves a jail running behind us.
class Child {
public:
    Child(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (!reaped_) {
            kill(SIGKILL);
            wait();
        }
    }
    pid_t pid() const { return pid_; }
    void kill(int sig) { ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0); }
    siginfo_t wait() {
        siginfo_t info{};
        while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0 && errno == EINTR) {
        }
        reaped_ = true;
        return info;
    }

private:
    pid_t pid_;
    UniqueFd pidfd_;
    bool reaped_ = false;
};

void write_proc(int dirfd, const char* file, const std::string& text, pid_t pid) {
    std::string what = "/proc/" + std::to_string(pid) + "/" + file;
    UniqueFd fd(::openat(dirfd, file, O_WRONLY | O_CLOEXEC));
    if (!fd) throw_sys("open", what);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) throw_sys("write", what);
}

void write_id_maps(const Plan& plan, pid_t pid) {
    std::string dir = "/proc/" + std::to_string(pid);
    UniqueFd d(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!d) throw_sys("open", dir);
    // One id each way, never host root: the jail's user is the caller (or, for
    // root, an unprivileged host user), and every other host id is unmapped.
    write_proc(d.get(), "uid_map", std::to_string(plan.uid) + " " + std::to_string(plan.host_uid) + " 1\n", pid);
    write_proc(d.get(), "setgroups", "deny", pid);
    write_proc(d.get(), "gid_map", std::to_string(plan.gid) + " " + std::to_string(plan.host_gid) + " 1\n", pid);
}

pid_t clone_jail(const Plan& plan, int* pidfd) {
    struct clone_args args {};
    args.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                 CLONE_NEWCGROUP | CLONE_PIDFD;
    if (plan.time_ns) args.flags |= CLONE_NEWTIME;
    args.pidfd = reinterpret_cast<uintptr_t>(pidfd);
    args.exit_signal = SIGCHLD;
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) {
        int err = errno;
        std::string hint;
        if (err == EPERM || err == ENOSPC || err == EUSERS)
            hint = " (are user namespaces allowed? see sysctl user.max_user_namespaces and "
                   "kernel.apparmor_restrict_unprivileged_userns)";
        throw Error("clone3 (new namespaces): " + std::string(std::strerror(err)) + hint, err);
    }
    return static_cast<pid_t>(pid);
}

UniqueFd open_script(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) throw_sys("script", path);
    struct stat st;
    check(::fstat(fd.get(), &st), "stat", path);
    if (!S_ISREG(st.st_mode)) throw Error("script " + path + ": not a regular file");
    return fd;
}

double ms_between(uint64_t a, uint64_t b) { return b > a ? static_cast<double>(b - a) / 1e6 : 0.0; }

}  // namespace

Outcome launch(const Plan& plan) {
    UniqueFd script;
    if (!plan.script_host.empty()) script = open_script(plan.script_host);

    sigset_t relayed;
    ::sigemptyset(&relayed);
    for (int s : kRelayed) ::sigaddset(&relayed, s);
    ::sigprocmask(SIG_BLOCK, &relayed, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    Pipe sync = make_pipe("sync pipe");
    Pipe filter = make_pipe("seccomp filter pipe");
    // A socket rather than a pipe: the seccomp listener fds travel on it.
    int sp[2];
    check(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), "socketpair", "report socket");
    Pipe report{UniqueFd(sp[0]), UniqueFd(sp[1])};
    // Root's supplementary groups (0 and friends) would otherwise follow it into
    // the jail, and after setgroups=deny the jail could never shed them.
    if (plan.clear_host_groups) check(::setgroups(0, nullptr), "setgroups", "(clear root's groups)");

    Outcome out;
    const uint64_t t0 = monotonic_ns();
    int pidfd = -1;
    pid_t pid = clone_jail(plan, &pidfd);
    auto mark = [&](const char* name) {
        if (plan.timings) out.phases.emplace_back(name, ms_between(t0, monotonic_ns()));
    };
    if (pid == 0) {
        sync.write.reset();
        report.read.reset();
        filter.write.reset();
        child_main(plan, ChildFds{sync.read.get(), report.write.get(), script.get(), filter.read.get()});
    }
    Child child(pid, pidfd);
    mark("supervisor: clone3");
    sync.read.reset();
    report.write.reset();
    filter.read.reset();
    script.reset();

    write_id_maps(plan, pid);
    check(static_cast<int>(::write(sync.write.get(), "1", 1)), "write", "sync pipe");
    mark("supervisor: id maps written");

    // Compiled here, on the supervisor's core, while the child builds the root.
    std::string bpf = seccomp::serialize(seccomp::compile_or_precompiled(plan.seccomp));
    // EPIPE: the jail failed before it wanted the filter; its report says why.
    if (::write(filter.write.get(), bpf.data(), bpf.size()) != static_cast<ssize_t>(bpf.size()) && errno != EPIPE)
        throw_sys("write", "seccomp filter pipe");
    filter.write.reset();
    mark("supervisor: seccomp filters compiled");
    seccomp::Notifier notifier(plan.seccomp);

    UniqueFd sigfd(check(::signalfd(-1, &relayed, SFD_CLOEXEC), "signalfd"));
    bool have_exit = false;
    int program_status = 0;
    uint64_t t_end = 0;
    bool open = true;
    while (open) {
        // report socket, signals, then one slot per live seccomp listener
        struct pollfd fds[4] = {{report.read.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
        nfds_t n = 2;
        for (const auto& l : notifier.listeners())
            if (l && n < 4) fds[n++] = {l.get(), POLLIN, 0};
        if (::poll(fds, n, -1) < 0) {
            if (errno == EINTR) continue;
            throw_sys("poll");
        }
        for (nfds_t i = 2; i < n; ++i) {
            if (fds[i].revents & POLLIN) notifier.handle(fds[i].fd);
            if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) notifier.close_listener(fds[i].fd);
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (::read(sigfd.get(), &si, sizeof si) == sizeof si) child.kill(static_cast<int>(si.ssi_signo));
        }
        if (fds[0].revents & (POLLIN | POLLHUP)) {
            WireMsg m;
            int passed[2], npassed = 0;
            if (!receive(report.read.get(), m, passed, 2, &npassed)) {
                for (int i = 0; i < npassed; ++i) ::close(passed[i]);
                open = false;  // EOF: the init and the program's pre-exec copy are gone
                continue;
            }
            for (int i = 0; i < npassed; ++i) notifier.add_listener(passed[i]);
            switch (m.type) {
                case WireMsg::SetupError:
                    out.kind = Outcome::Kind::SetupError;
                    out.err = m.err;
                    out.message = m.text;
                    break;
                case WireMsg::ExecReady:
                    out.setup_ms = ms_between(t0, m.t_ns);
                    if (plan.timings) out.phases.emplace_back("program: privileges dropped, filters in", out.setup_ms);
                    break;
                case WireMsg::Phase: out.phases.emplace_back(m.text, ms_between(t0, m.t_ns)); break;
                case WireMsg::ExecError:
                    out.kind = Outcome::Kind::ExecError;
                    out.err = m.err;
                    out.message = m.text;
                    out.setup_ms = -1;
                    break;
                case WireMsg::Exit:
                    have_exit = true;
                    program_status = m.status;
                    t_end = m.t_ns;
                    break;
            }
        }
    }
    const uint64_t t_eof = monotonic_ns();
    siginfo_t init = child.wait();
    out.violations = notifier.violations();
    out.seccomp_killed = notifier.killed_a_process();
    out.learned = notifier.learned();
    if (plan.timings) {
        if (t_end) out.phases.emplace_back("jail: program ran, init reported exit", ms_between(t0, t_end));
        out.phases.emplace_back("supervisor: report pipe closed", ms_between(t0, t_eof));
        out.phases.emplace_back("supervisor: init reaped (namespaces gone)", ms_between(t0, monotonic_ns()));
    }
    if (!t_end) t_end = monotonic_ns();
    out.wall_ms = ms_between(t0, t_end);

    if (!out.message.empty()) {
        if (out.kind == Outcome::Kind::ExecError) out.exit_code = out.err == ENOENT ? 127 : 126;
        return out;
    }
    if (!have_exit) {
        // The init itself died without reporting (killed from outside).
        out.kind = Outcome::Kind::Signaled;
        out.signal = init.si_code == CLD_EXITED ? 0 : init.si_status;
        if (init.si_code == CLD_EXITED) {
            out.kind = Outcome::Kind::Exited;
            out.exit_code = init.si_status;
        }
        return out;
    }
    if (WIFSIGNALED(program_status)) {
        out.kind = Outcome::Kind::Signaled;
        out.signal = WTERMSIG(program_status);
        // The filter's "kill" is carried out by the supervisor with SIGKILL;
        // report it as the kernel's own seccomp kill would appear.
        if (out.signal == SIGKILL && out.seccomp_killed) out.signal = SIGSYS;
    } else {
        out.kind = Outcome::Kind::Exited;
        out.exit_code = WEXITSTATUS(program_status);
    }
    return out;
}

}  // namespace stockade::sandbox
