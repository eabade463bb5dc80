#include "sandbox/launch.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sandbox/cgroup.hpp"
#include "sandbox/exec_rules.hpp"
#include "sandbox/sysctls.hpp"
#include "sandbox/jail.hpp"
#include "sandbox/rlimits.hpp"
#include "sandbox/wire.hpp"
#include "seccomp/filter.hpp"
#include "supervise/proxy.hpp"
#include "supervise/relay.hpp"
#include "supervise/terminal.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::sandbox {
namespace {

constexpr int kRelayed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
constexpr int kJobControl[] = {SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGWINCH};

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
    // wait4 rather than waitid: its rusage covers the init and everything the
    // init reaped, which is the whole jail's CPU time. The pid cannot have been
    // reused: it is our unreaped child until this returns.
    int wait(struct rusage* ru = nullptr) {
        int status = 0;
        struct rusage scratch;
        while (::wait4(pid_, &status, __WALL, ru ? ru : &scratch) < 0 && errno == EINTR) {
        }
        reaped_ = true;
        return status;
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

pid_t clone_jail(const Plan& plan, int* pidfd, int cgroup_fd) {
    struct clone_args args {};
    args.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD;
    if (plan.net_ns) args.flags |= CLONE_NEWNET;
    if (plan.time_ns) args.flags |= CLONE_NEWTIME;
    if (cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = static_cast<uint64_t>(cgroup_fd);
    }
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

Outcome launch(const Plan& plan_in) {
    Plan plan = plan_in;
    UniqueFd script;
    if (!plan.script_host.empty()) script = open_script(plan.script_host);

    sigset_t relayed;
    ::sigemptyset(&relayed);
    for (int s : kRelayed) ::sigaddset(&relayed, s);
    // With a terminal, job control and the window size are ours to handle.
    if (plan.terminal)
        for (int s : kJobControl) ::sigaddset(&relayed, s);
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
    const profile::Limits& lim = plan.limits;
    // The cgroup first: a failure here leaves nothing behind to undo.
    std::unique_ptr<Cgroup> cg;
    if (lim.memory || lim.pids || lim.cpus > 0 || lim.cpu_ms) {
        std::string why;
        cg = create_cgroup(lim, why);
        if (!cg && lim.require_cgroup)
            throw Error("limits.require_cgroup: " + why + " (or allow rlimits instead: --set limits.require_cgroup=false)");
        if (cg) {
            plan.cgroup = true;
            out.cgroup = cg->version();
        } else {
            plan.degraded = degraded_without_cgroup(lim, why);
        }
    }
    out.degraded = plan.degraded;
    if (landlock_abi() == 0)
        out.degraded.emplace_back("exec_allow", "this kernel has no Landlock: only the first program is checked");
    if (!host_has_memfd_noexec())
        out.degraded.emplace_back("memfd_noexec", "this kernel (before 6.3) lets memfd files be executed");
    // Terminals are met by the jail's own pty (relayed and capped below); pipes
    // and files by the splice relay.
    const bool relay_out = lim.output && !(plan.terminal & 2u), relay_err = lim.output && !(plan.terminal & 4u);
    supervise::OutputRelay relay(lim.output, relay_out, relay_err);
    supervise::TerminalRelay term(plan.terminal, lim.output);
    const uint64_t t0 = monotonic_ns();
    int pidfd = -1;
    pid_t pid = clone_jail(plan, &pidfd, cg ? cg->clone_into_fd() : -1);
    auto mark = [&](const char* name) {
        if (plan.timings) out.phases.emplace_back(name, ms_between(t0, monotonic_ns()));
    };
    if (pid == 0) {
        sync.write.reset();
        report.read.reset();
        filter.write.reset();
        child_main(plan, ChildFds{sync.read.get(), report.write.get(), script.get(), filter.read.get(),
                                  relay.jail_end(0), relay.jail_end(1)});
    }
    Child child(pid, pidfd);
    mark("supervisor: clone3");
    sync.read.reset();
    report.write.reset();
    filter.read.reset();
    script.reset();
    relay.close_jail_ends();

    if (cg) cg->attach(pid);  // v1; v2 cloned it in already
    write_id_maps(plan, pid);
    check(static_cast<int>(::write(sync.write.get(), "1", 1)), "write", "sync pipe");
    mark("supervisor: id maps written");

    // The wall clock runs from clone: SIGTERM to the program when it runs out,
    // SIGKILL to the whole jail after the grace period.
    UniqueFd wall(check(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd_create"));
    auto arm = [&](uint64_t ms) {
        struct itimerspec its {};
        its.it_value.tv_sec = static_cast<time_t>(ms / 1000);
        its.it_value.tv_nsec = static_cast<long>((ms % 1000) * 1000000);
        if (ms == 0) its.it_value.tv_nsec = 1;
        check(::timerfd_settime(wall.get(), 0, &its, nullptr), "timerfd_settime");
    };
    if (lim.wall_ms) arm(lim.wall_ms);
    // The jail's CPU total, from the cgroup, checked ten times a second.
    UniqueFd cpu_check;
    if (cg && lim.cpu_ms && cg->cpu_ms() >= 0) {
        cpu_check = UniqueFd(check(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd_create"));
        struct itimerspec its {};
        its.it_value.tv_nsec = its.it_interval.tv_nsec = 100000000;
        check(::timerfd_settime(cpu_check.get(), 0, &its, nullptr), "timerfd_settime");
    }

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
    std::unique_ptr<supervise::Proxy> proxy;
    if (plan.proxy_port) {
        std::vector<net::Rule> rules;
        for (const auto& text : plan.net_allow) {
            net::Rule r;
            if (net::parse_rule(text, r).empty()) rules.push_back(r);
        }
        supervise::Proxy::Options po;
        po.allow = net::Allowlist(std::move(rules));
        for (const auto& [name, ip] : plan.net_hosts) po.pins[name] = ip;
        po.nameservers = plan.net_nameservers;
        proxy = std::make_unique<supervise::Proxy>(std::move(po), t0);
    }
    std::vector<pollfd> fds;
    bool open = true;
    bool jail_killed_for_seccomp = false;
    // Ctrl-Z (or SIGTTIN): the caller's terminal back as it was, the jail
    // frozen, and we stop; when continued, the reverse.
    auto suspend = [&] {
        term.restore();
        child.kill(freeze_signal());
        ::kill(::getpid(), SIGSTOP);
        child.kill(thaw_signal());
        term.resume();
    };
    while (open || relay.relaying(0) || relay.relaying(1) || term.relaying()) {
        // report socket, signals, wall clock, output relays, seccomp listener, proxy
        fds.clear();
        int slot_report = -1, slot_relay[2] = {-1, -1};
        auto add = [&](int fd, short ev) {
            fds.push_back({fd, ev, 0});
            return static_cast<int>(fds.size() - 1);
        };
        if (open) slot_report = add(report.read.get(), POLLIN);
        const int slot_sig = add(sigfd.get(), POLLIN);
        const int slot_wall = add(wall.get(), POLLIN);
        int slot_cpu = -1;
        if (cpu_check) slot_cpu = add(cpu_check.get(), POLLIN);
        for (int i = 0; i < 2; ++i)
            if (relay.relaying(i)) {
                pollfd p = relay.poll_for(i);
                slot_relay[i] = add(p.fd, p.events);
            }
        const size_t first_listener = fds.size();
        const int notify_wait = notifier.wait_ms();
        if (notify_wait == 0)
            for (const auto& l : notifier.listeners())
                if (l) add(l.get(), POLLIN);
        const size_t first_term = fds.size();
        term.fill(fds);
        const size_t first_proxy = fds.size();
        int timeout = notify_wait > 0 ? notify_wait : -1;
        if (proxy) {
            proxy->fill(fds);
            int t = proxy->expire();
            if (t >= 0 && (timeout < 0 || t < timeout)) timeout = t;
        }
        const nfds_t n = fds.size();
        if (::poll(fds.data(), n, timeout) < 0) {
            if (errno == EINTR) continue;
            throw_sys("poll");
        }
        if (proxy)
            for (size_t i = first_proxy; i < n; ++i) proxy->handle(fds[i]);
        bool stop = false;
        for (size_t i = first_term; i < first_proxy; ++i) stop |= term.handle(fds[i]);
        if (stop) suspend();
        if (term.over_cap() && lim.output_kill && !out.output_killed) {
            out.output_killed = true;
            child.kill(SIGKILL);
        }
        for (size_t i = first_listener; i < first_term; ++i) {
            if (fds[i].revents & POLLIN) notifier.drain(fds[i].fd);
            if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) notifier.close_listener(fds[i].fd);
        }
        if (notifier.wants_jail_killed() && !jail_killed_for_seccomp) {
            jail_killed_for_seccomp = true;
            child.kill(SIGKILL);
        }
        for (int i = 0; i < 2; ++i) {
            if (slot_relay[i] < 0 || !(fds[slot_relay[i]].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) continue;
            relay.pump(i);
            if (relay.over_cap() && lim.output_kill && !out.output_killed) {
                out.output_killed = true;
                child.kill(SIGKILL);
            }
        }
        if (fds[slot_wall].revents & POLLIN) {
            uint64_t ticks;
            (void)!::read(wall.get(), &ticks, sizeof ticks);
            if (!out.timed_out_wall) {
                out.timed_out_wall = true;
                child.kill(SIGTERM);  // the init passes it to the program
                arm(lim.grace_ms);
            } else {
                child.kill(SIGKILL);  // the init, and with it every process in the jail
            }
        }
        if (slot_cpu >= 0 && (fds[slot_cpu].revents & POLLIN)) {
            uint64_t ticks;
            (void)!::read(cpu_check.get(), &ticks, sizeof ticks);
            if (!out.timed_out_cpu && cg->cpu_ms() >= static_cast<double>(lim.cpu_ms)) {
                out.timed_out_cpu = true;
                child.kill(SIGKILL);
            }
        }
        if (fds[slot_sig].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
                const int sig = static_cast<int>(si.ssi_signo);
                if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) suspend();
                else if (sig == SIGCONT) {
                    child.kill(thaw_signal());
                    term.resume();
                } else if (sig == SIGWINCH) term.resize();
                else child.kill(sig);
            }
        }
        if (slot_report >= 0 && (fds[slot_report].revents & (POLLIN | POLLHUP))) {
            WireMsg m;
            int passed[2], npassed = 0;
            if (!receive(report.read.get(), m, passed, 2, &npassed)) {
                for (int i = 0; i < npassed; ++i) ::close(passed[i]);
                open = false;  // EOF: the init and the program's pre-exec copy are gone
                continue;
            }
            if (m.type == WireMsg::PtyMaster && npassed == 1) {
                term.attach(passed[0]);
                continue;
            }
            if (m.type == WireMsg::ProxyListener && proxy && npassed == 1) {
                proxy->add_listener(passed[0]);
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
    struct rusage ru {};
    const int init_status = child.wait(&ru);
    out.cpu_user_ms = static_cast<double>(ru.ru_utime.tv_sec) * 1e3 + static_cast<double>(ru.ru_utime.tv_usec) / 1e3;
    out.cpu_sys_ms = static_cast<double>(ru.ru_stime.tv_sec) * 1e3 + static_cast<double>(ru.ru_stime.tv_usec) / 1e3;
    out.max_rss_bytes = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
    out.truncated = relay.over_cap() || term.over_cap();
    if (proxy) {
        out.network = proxy->records();
        out.network_dropped = proxy->dropped();
    }
    if (cg) {
        CgroupStats st = cg->stats();
        out.oom_kills = st.oom_kills;
        out.pids_peak = st.pids_peak;
        out.pids_refused = st.pids_refused;
        out.memory_peak = st.memory_peak;
        // The cgroup saw every process, including those that died with the init
        // unreaped by it (a jail ended by stockade), which rusage misses.
        if (st.user_ms >= 0 && st.user_ms + st.sys_ms > out.cpu_user_ms + out.cpu_sys_ms) {
            out.cpu_user_ms = st.user_ms;
            out.cpu_sys_ms = st.sys_ms;
        }
    }
    if (relay_out) out.stdout_bytes = static_cast<int64_t>(relay.bytes(0));
    // What came through the jail's terminal counts as the stream it stands for.
    if (plan.terminal & 2u) out.stdout_bytes = static_cast<int64_t>(term.bytes());
    else if (plan.terminal & 4u) out.stderr_bytes = static_cast<int64_t>(term.bytes());
    if (relay_err) out.stderr_bytes = static_cast<int64_t>(relay.bytes(1));
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
    struct rusage self {};
    ::getrusage(RUSAGE_SELF, &self);
    out.supervisor_cpu_ms = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) * 1e3 +
                            static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e3;
    // VmHWM rather than ru_maxrss: the latter keeps the peak of whatever ran
    // in this process before execve (a large caller that forked us).
    out.supervisor_max_rss_bytes = static_cast<uint64_t>(self.ru_maxrss) * 1024;
    if (FILE* f = std::fopen("/proc/self/status", "re")) {
        char line[128];
        while (std::fgets(line, sizeof line, f))
            if (std::strncmp(line, "VmHWM:", 6) == 0) out.supervisor_max_rss_bytes = std::strtoull(line + 6, nullptr, 10) * 1024;
        std::fclose(f);
    }

    if (!out.message.empty()) {
        if (out.kind == Outcome::Kind::ExecError) out.exit_code = out.err == ENOENT ? 127 : 126;
        return out;
    }
    if (!have_exit) {
        // The init itself died without reporting (killed by stockade or from outside).
        if (WIFEXITED(init_status)) {
            out.kind = Outcome::Kind::Exited;
            out.exit_code = WEXITSTATUS(init_status);
        } else {
            out.kind = Outcome::Kind::Signaled;
            out.signal = WTERMSIG(init_status);
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
