#include "supervise/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "jail_interface.hpp"
#include "profile/limits.hpp"
#include "supervise/cgroup.hpp"
#include "seccomp/filter.hpp"
#include "supervise/proxy.hpp"
#include "supervise/template_fork.hpp"
#include "util/error.hpp"
#include "util/clock.hpp"
#include "util/container.hpp"
#include "util/kernel.hpp"
#include "util/exit_codes.hpp"

namespace stockade::supervise {

using jail::WireMsg;
using plan::Plan;
using supervise::Outcome;

namespace {

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
    args.flags =
        CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD;
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
        const std::string engine = container_engine();
        if (!engine.empty() && (err == ENOSYS || err == EPERM))
            hint = " (this is a " + engine + " container whose seccomp profile refuses new namespaces; run it with " +
                   container_seccomp_fix(engine) + ")";
        else if (err == EPERM || err == ENOSPC || err == EUSERS)
            hint =
                " (user namespaces are refused here: a sysctl, AppArmor or a container's seccomp profile; "
                "`stockade doctor` says which, and the fix)";
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

double tv_ms(const struct timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e3 + static_cast<double>(tv.tv_usec) / 1e3;
}

}  // namespace

JailProcess::~JailProcess() {
    if (!reaped_) {
        kill(SIGKILL);
        struct rusage ru;
        wait(&ru);
    }
}

void JailProcess::kill(int sig) { ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0); }

int JailProcess::wait(struct rusage* ru) {
    if (adopted_) {
        // Not ours to reap: its end is all we wait for (the kill above, or
        // its own), and its report has said how it ended.
        *ru = {};
        struct pollfd p {
            pidfd_.get(), POLLIN, 0
        };
        while (::poll(&p, 1, 5000) < 0 && errno == EINTR) {}
        reaped_ = true;
        return SIGKILL;  // a wait status: killed, for when no report came
    }
    // The pid cannot have been reused: it is our unreaped child until this returns.
    int status = 0;
    while (::wait4(pid_, &status, __WALL, ru) < 0 && errno == EINTR) {}
    reaped_ = true;
    return status;
}

namespace {
// What a captured stream may hold when the profile sets no output cap: the
// server's memory is not the jail's to fill.
constexpr uint64_t kCaptureCap = 64ull << 20;

OutputRelay make_relay(const Plan& plan, bool capture) {
    if (capture) return OutputRelay(plan.limits.output ? plan.limits.output : kCaptureCap, true, true, true);
    // Terminals are met by the jail's own pty; pipes and files by the splice relay.
    return OutputRelay(plan.limits.output, plan.limits.output && !(plan.terminal & 2u),
                       plan.limits.output && !(plan.terminal & 4u));
}

// CPU time of the init's children (the program) so far, from /proc: the
// baseline of a warm jail without a cgroup.
double children_cpu_ms(pid_t init) {
    std::string list;
    std::string path = "/proc/" + std::to_string(init) + "/task/" + std::to_string(init) + "/children";
    if (FILE* f = std::fopen(path.c_str(), "re")) {
        char buf[256];
        while (std::fgets(buf, sizeof buf, f)) list += buf;
        std::fclose(f);
    }
    double total = 0;
    const double tick = 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    for (char* p = list.data(); *p;) {
        char* end;
        long pid = std::strtol(p, &end, 10);
        if (end == p) break;
        p = end;
        std::string stat = "/proc/" + std::to_string(pid) + "/stat";
        FILE* f = std::fopen(stat.c_str(), "re");
        if (!f) continue;
        char line[1024];
        if (std::fgets(line, sizeof line, f)) {
            // After the command's closing parenthesis: field 3 on; utime and stime are 14 and 15.
            if (char* rp = std::strrchr(line, ')')) {
                unsigned long long ut = 0, st = 0;
                if (std::sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
                    total += static_cast<double>(ut + st) * tick;
            }
        }
        std::fclose(f);
    }
    return total;
}
}  // namespace

Supervisor::Supervisor(const Plan& plan, EventLoop& loop, Options opt)
    : plan_(plan),
      loop_(loop),
      opt_(opt),
      relay_(make_relay(plan, opt.capture)),
      term_(plan.terminal, plan.limits.output, plan.terminal_raw) {}

Supervisor::~Supervisor() = default;

void Supervisor::mark(const char* name) {
    if (plan_.timings) out_.phases.emplace_back(name, ms_between(t0_, monotonic_ns()));
}

void Supervisor::arm_wall(uint64_t ms) {
    struct itimerspec its {};
    its.it_value.tv_sec = static_cast<time_t>(ms / 1000);
    its.it_value.tv_nsec = static_cast<long>((ms % 1000) * 1000000);
    if (ms == 0) its.it_value.tv_nsec = 1;
    check(::timerfd_settime(wall_.get(), 0, &its, nullptr), "timerfd_settime");
}

void Supervisor::start() {
    const Plan& plan = plan_;
    const profile::Limits& lim = plan.limits;
    UniqueFd script;
    if (!plan.script_host.empty()) script = open_script(plan.script_host);
    Pipe sync = make_pipe("sync pipe");
    Pipe filter = make_pipe("seccomp filter pipe");
    // A socket rather than a pipe: the seccomp listener and other fds travel on it.
    int sp[2];
    check(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), "socketpair", "report socket");
    Pipe report{UniqueFd(sp[0]), UniqueFd(sp[1])};
    UniqueFd control_jail;
    if (opt_.warm) {
        check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), "socketpair", "control socket");
        control_ = UniqueFd(sp[0]);
        control_jail = UniqueFd(sp[1]);
    }

    // The cgroup first: a failure here leaves nothing behind to undo. Whether
    // there is one is decided now, and travels beside the plan, not in it.
    if (profile::needs_cgroup(lim)) {
        std::string why;
        cg_ = create_cgroup(lim, why);
        if (!cg_ && lim.require_cgroup)
            throw Error("limits.require_cgroup: " + why +
                        " (or allow rlimits instead: --set limits.require_cgroup=false)");
        if (cg_)
            out_.cgroup = cg_->version();
        else
            out_.degraded = degraded_without_cgroup(lim, why);
    }
    // Without a cgroup the jail is pinned to limits.cpu's cores (jail/rlimits):
    // the filter then refuses sched_setaffinity, so nothing in it widens the pin.
    spec_ = plan.seccomp;
    if (!cg_ && lim.cpus > 0 && spec_.enabled) {
        const int nr = SYS_sched_setaffinity;
        std::erase(spec_.allow, nr);
        if (!std::binary_search(spec_.deny.begin(), spec_.deny.end(), nr))
            spec_.deny.insert(std::upper_bound(spec_.deny.begin(), spec_.deny.end(), nr), nr);
        if (!spec_.deny_errno) spec_.deny_errno = EPERM;
    }
    const bool exec_rules = landlock_abi() >= 2;  // decided once, here; the jail is told
    if (!exec_rules)
        out_.degraded.emplace_back("exec_allow",
                                   "this kernel has no Landlock (ABI 2): only the first program is checked");
    if (!host_has_memfd_noexec())
        out_.degraded.emplace_back("memfd_noexec", "this kernel (before 6.3) lets memfd files be executed");

    t0_ = monotonic_ns();
    if (opt_.template_fd >= 0) return start_from_template(sync, filter, report, control_jail, exec_rules);
    int pidfd = -1;
    pid_t pid = clone_jail(plan, &pidfd, cg_ ? cg_->clone_into_fd() : -1);
    if (pid == 0) {
        sync.write.reset();
        report.read.reset();
        filter.write.reset();
        jail::ChildFds fds;
        fds.sync = sync.read.get();
        fds.report = report.write.get();
        fds.script = script.get();
        fds.filter = filter.read.get();
        fds.out = relay_.jail_end(0);
        fds.err = relay_.jail_end(1);
        fds.cgroup = static_cast<bool>(cg_);
        fds.exec_rules = exec_rules;
        fds.control = control_jail.get();
        jail::child_main(plan, fds);
    }
    child_ = std::make_unique<JailProcess>(pid, pidfd);
    mark("supervisor: clone3");
    script.reset();
    close_jail_ends(sync, filter, report, control_jail);

    write_id_maps(plan, pid);
    check(static_cast<int>(::write(sync.write.get(), "1", 1)), "write", "sync pipe");
    mark("supervisor: id maps written");
    // cgroup v1 has no CLONE_INTO_CGROUP: the jail is moved in now, while its
    // child builds the root. The kernel's migration waits for an RCU grace
    // period (about 10 ms), which this keeps off the path of the program, and
    // the init starts the program only after the second byte.
    if (cg_ && cg_->clone_into_fd() < 0) {
        try {
            cg_->attach(pid);
        } catch (const Error&) {
            // A child that already failed (its report says why) cannot be moved.
            struct pollfd p {
                child_->pidfd(), POLLIN, 0
            };
            if (::poll(&p, 1, 0) != 1) throw;
        }
        mark("supervisor: cgroup attached (v1)");
    }
    // EPIPE: the child failed before it needed this; its report says why.
    if (::write(sync.write.get(), "2", 1) != 1 && errno != EPIPE) throw_sys("write", "sync pipe");
    sync_ = std::move(sync.write);  // its hang-up tells the child if we die early
    finish_start(filter, report);
}

void Supervisor::start_from_template(Pipe& sync, Pipe& filter, Pipe& report, UniqueFd& control_jail, bool exec_rules) {
    const std::string request = template_request(plan_, static_cast<bool>(cg_), exec_rules);
    TemplateFds fds{report.write.get(), sync.read.get(),    filter.read.get(),
                    relay_.jail_end(0), relay_.jail_end(1), control_jail.get()};
    send_fork_request(opt_.template_fd, request, fds, report.read.get());
    mark("supervisor: fork requested");
    close_jail_ends(sync, filter, report, control_jail);
    // Its init waits for the second byte before its program starts (on_hello).
    sync_ = std::move(sync.write);
    awaiting_hello_ = true;
    hello_wait_ = Timer(loop_, [this] { fork_failed("template fork: no answer from the task's init in 10 s"); });
    hello_wait_.arm_in_ms(10000);
    // The filter is at most BPF_MAXINSNS instructions (32 KiB): the pipe
    // holds it until the program reads it.
    finish_start(filter, report);
}

// The fork's init said hello: it is the jail's init from now on. Put in the
// task's cgroup before its program starts, so that the program runs there
// from its first instruction.
void Supervisor::on_hello() {
    try {
        UniqueFd pidfd;
        const pid_t pid = receive_hello(report_.get(), pidfd);
        if (pid == 0) return;
        child_ = std::make_unique<JailProcess>(pid, pidfd.release(), true);
        awaiting_hello_ = false;
        hello_wait_.reset();
        mark("supervisor: forked from the template");
        if (cg_) cg_->attach(pid);
        if (::write(sync_.get(), "2", 1) != 1 && errno != EPIPE) throw_sys("write", "sync pipe");
    } catch (const Error& e) {
        fork_failed(e.what());
    }
}

// A fork that failed before it was a jail, or a jail that could not be put
// in its cgroup: the jail ends now, with this as its setup error.
void Supervisor::fork_failed(const std::string& why) {
    awaiting_hello_ = false;
    hello_wait_.reset();
    out_.kind = Outcome::Kind::SetupError;
    out_.message = why;
    if (child_) return child_->kill(SIGKILL);
    // No init: nothing to wait for. What holds the jail's ends sees them
    // closed (the sync pipe: an init that says hello later exits).
    no_child_ = true;
    sync_.reset();
    close_report();
}

// The report pipe's EOF: the init and the program's pre-exec copy are gone
// (or there never was an init).
void Supervisor::close_report() {
    open_ = false;
    t_eof_ = monotonic_ns();
    report_w_.reset();
    report_.reset();
}

// The jail holds its own copies now: keeping ours would hide its hang-ups.
void Supervisor::close_jail_ends(Pipe& sync, Pipe& filter, Pipe& report, UniqueFd& control_jail) {
    sync.read.reset();
    report.write.reset();
    filter.read.reset();
    control_jail.reset();
    relay_.close_jail_ends();
}

void Supervisor::finish_start(Pipe& filter, Pipe& report) {
    const Plan& plan = plan_;
    const profile::Limits& lim = plan.limits;

    // The wall clock runs from clone: SIGTERM to the program when it runs out,
    // SIGKILL to the whole jail after the grace period.
    wall_ = UniqueFd(check(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd_create"));
    if (lim.wall_ms && !opt_.warm) arm_wall(lim.wall_ms);
    // The jail's CPU total, from the cgroup, checked ten times a second:
    // from clone, or for a warm jail from its task's start (begin_task); a
    // pool of idle jails does not wake the server.
    if (cg_ && lim.cpu_ms && cg_->cpu_ms() >= 0) {
        cpu_check_ = UniqueFd(check(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd_create"));
        if (!opt_.warm) arm_cpu_check();
    }

    // Compiled here, on the supervisor's core, while the child builds the root.
    // A template has none: each task it forks installs its own (the kernel
    // allows one listener per filter tree).
    std::string bpf =
        seccomp::serialize(plan.template_program ? seccomp::Compiled{} : seccomp::compile_or_precompiled(spec_));
    // EPIPE: the jail failed before it wanted the filter; its report says why.
    if (::write(filter.write.get(), bpf.data(), bpf.size()) != static_cast<ssize_t>(bpf.size()) && errno != EPIPE)
        throw_sys("write", "seccomp filter pipe");
    filter.write.reset();
    mark("supervisor: seccomp filters compiled");
    notifier_ = std::make_unique<supervise::Notifier>(spec_);

    if (plan.proxy_port) {
        Proxy::Options po;
        po.allow = net::Allowlist(plan.net_rules);
        for (const auto& [name, ip] : plan.net_hosts) po.pins[name] = ip;
        po.nameservers = plan.net_nameservers;
        proxy_ = std::make_unique<Proxy>(std::move(po), t0_, loop_);
    }
    report_ = std::move(report.read);
    open_ = true;
    watch_fds();
}

bool Supervisor::done() const {
    if (no_child_) return !open_;
    return child_ && !open_ && !relay_.relaying(0) && !relay_.relaying(1) && !term_.relaying();
}

void Supervisor::kill() {
    if (child_) child_->kill(SIGKILL);
}

pid_t Supervisor::pid() const { return child_ ? child_->pid() : -1; }

int Supervisor::pidfd() const { return child_ ? child_->pidfd() : -1; }

bool Supervisor::gone_unseen() const {
    pollfd p[2] = {{child_ ? child_->pidfd() : -1, POLLIN, 0}, {control_.get(), POLLIN, 0}};
    if (::poll(p, 2, 0) <= 0) return false;
    return (p[0].revents & POLLIN) || (p[1].revents & (POLLIN | POLLHUP | POLLERR));
}

void Supervisor::set_cpu_weight(unsigned weight) {
    if (cg_) cg_->set_cpu_weight(weight);
}

bool Supervisor::end_as_reported(int exit_code) {
    // Asked after every round of the loop until taken: the cgroup's file is
    // read only once the output is closed.
    if (have_exit_ || !child_ || !cg_ || relay_.relaying(0) || relay_.relaying(1) || term_.relaying()) return false;
    if (cg_->cpu_ms() < 0) return false;
    have_exit_ = true;
    program_status_ = (exit_code & 0xff) << 8;  // as wait(2) puts an exit code
    t_end_ = monotonic_ns();
    return true;
}

void Supervisor::arm_cpu_check() {
    struct itimerspec its {};
    its.it_value.tv_nsec = its.it_interval.tv_nsec = 100000000;
    check(::timerfd_settime(cpu_check_.get(), 0, &its, nullptr), "timerfd_settime");
}

void Supervisor::begin_task(uint64_t wall_ms) {
    t_task_ = monotonic_ns();
    if (wall_ms) arm_wall(wall_ms);
    if (cpu_check_) arm_cpu_check();
    cpu_base_ms_ = cg_ ? std::max(0.0, cg_->cpu_ms()) : 0;
    if (!cg_ && child_) base_rusage_ms_ = children_cpu_ms(child_->pid());
}

std::pair<std::string, std::string> Supervisor::take_output(bool* truncated) {
    relay_.drain(0);
    relay_.drain(1);
    if (truncated) *truncated = relay_.over_cap();
    std::pair<std::string, std::string> out{relay_.take(0), relay_.take(1)};
    relay_.new_window();
    return out;
}

void Supervisor::suspend() {
    // Ctrl-Z (or SIGTTIN): the caller's terminal back as it was, the jail
    // frozen, and we stop; when continued, the reverse.
    if (!child_) return;
    term_.restore();
    child_->kill(jail::freeze_signal());
    ::kill(::getpid(), SIGSTOP);
    child_->kill(jail::thaw_signal());
    term_.resume();
}

void Supervisor::signal(int sig) {
    if (!child_) return;
    if (plan_.terminal && (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)) {
        suspend();
    } else if (plan_.terminal && sig == SIGCONT) {
        child_->kill(jail::thaw_signal());
        term_.resume();
    } else if (sig == SIGWINCH) {
        term_.resize();
    } else if (sig != SIGCONT && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) {
        child_->kill(sig);
    }
}

void Supervisor::watch_fds() {
    for (int i = 0; i < 2; ++i)
        if (relay_.relaying(i))
            relay_w_[i] = IoWatch(loop_, -1, 0, [this, i](short revents) {
                if (revents & (POLLIN | POLLOUT | POLLHUP | POLLERR)) relay_.pump(i);
                after_event();
            });
    wall_w_ = IoWatch(loop_, wall_.get(), POLLIN, [this](short revents) {
        if (revents & POLLIN) on_wall();
    });
    if (cpu_check_)
        cpu_w_ = IoWatch(loop_, cpu_check_.get(), POLLIN, [this](short revents) {
            if (revents & POLLIN) on_cpu_check();
        });
    // After the relays within a round: what the program wrote before it
    // exited is passed on before its exit is read.
    report_w_ = IoWatch(
        loop_, report_.get(), POLLIN,
        [this](short revents) {
            if (!(revents & (POLLIN | POLLHUP))) return;
            on_report();
            after_event();
        },
        1);
    if (term_.wanted())
        term_.bind(loop_, [this](bool stop) {
            if (stop) suspend();
            after_event();
        });
    notify_wait_ = Timer(loop_, [] {});  // only wakes the loop: prepare() opens the listeners again
    prepare_ = Hook(loop_, Hook::When::Prepare, [this] { prepare(); });
}

void Supervisor::prepare() {
    for (int i = 0; i < 2; ++i) {
        if (!relay_w_[i]) continue;
        if (relay_.relaying(i)) {
            pollfd p = relay_.poll_for(i);
            relay_w_[i].set(p.fd, p.events);
        } else {
            relay_w_[i].reset();
        }
    }
    const int wait = notifier_->wait_ms();
    for (auto& w : listener_w_) w.set_events(wait == 0 ? POLLIN : 0);
    if (wait > 0)
        notify_wait_.arm_in_ms(static_cast<uint64_t>(wait));
    else
        notify_wait_.disarm();
}

// What any event may have changed: the output cap, or a seccomp kill that
// must take the whole jail.
void Supervisor::after_event() {
    const profile::Limits& lim = plan_.limits;
    if ((term_.over_cap() || relay_.over_cap()) && lim.output_kill && !out_.output_killed) {
        out_.output_killed = true;
        if (child_) child_->kill(SIGKILL);
    }
    if (notifier_->wants_jail_killed() && !seccomp_kill_sent_) {
        seccomp_kill_sent_ = true;
        if (child_) child_->kill(SIGKILL);
    }
}

void Supervisor::on_listener(int fd, short revents) {
    if (revents & POLLIN) notifier_->drain(fd);
    if (revents & (POLLHUP | POLLERR | POLLNVAL)) notifier_->close_listener(fd);
    // Closed (every process under that filter is gone): its number may be reused.
    const auto& ls = notifier_->listeners();
    if (std::none_of(ls.begin(), ls.end(), [fd](const UniqueFd& l) { return l.get() == fd; }))
        std::erase_if(listener_w_, [fd](const IoWatch& w) { return w.fd() == fd; });
    after_event();
}

void Supervisor::set_deadline(uint64_t ms, std::function<void()> fire) {
    deadline_ = ms ? std::move(fire) : nullptr;
    if (ms) return arm_wall(ms);
    struct itimerspec off {};
    check(::timerfd_settime(wall_.get(), 0, &off, nullptr), "timerfd_settime");
}

void Supervisor::on_wall() {
    uint64_t ticks;
    (void)!::read(wall_.get(), &ticks, sizeof ticks);
    if (deadline_) {
        auto fire = std::move(deadline_);
        deadline_ = nullptr;
        fire();  // may set the next deadline
        return;
    }
    // A fork not yet a jail: its limit holds from its hello on (and it has
    // 10 s to say it).
    if (!child_) return arm_wall(10);
    if (!out_.timed_out_wall) {
        out_.timed_out_wall = true;
        child_->kill(SIGTERM);  // the init passes it to the program
        arm_wall(plan_.limits.grace_ms);
    } else {
        child_->kill(SIGKILL);  // the init, and with it every process in the jail
    }
}

void Supervisor::on_cpu_check() {
    uint64_t ticks;
    (void)!::read(cpu_check_.get(), &ticks, sizeof ticks);
    if (child_ && !out_.timed_out_cpu && cg_->cpu_ms() - cpu_base_ms_ >= static_cast<double>(plan_.limits.cpu_ms)) {
        out_.timed_out_cpu = true;
        child_->kill(SIGKILL);
    }
}

void Supervisor::on_report() {
    if (awaiting_hello_) return on_hello();
    WireMsg m;
    int passed[2], npassed = 0;
    if (!jail::receive(report_.get(), m, passed, 2, &npassed)) {
        for (int i = 0; i < npassed; ++i) ::close(passed[i]);
        return close_report();
    }
    if (m.type == WireMsg::PtyMaster && npassed == 1) return term_.attach(passed[0]);
    if (m.type == WireMsg::ProxyListener && npassed == 1) {
        if (proxy_)
            proxy_->add_listener(passed[0]);
        else
            ::close(passed[0]);
        return;
    }
    for (int i = 0; i < npassed; ++i) {
        notifier_->add_listener(passed[i]);
        const int fd = passed[i];
        listener_w_.emplace_back(loop_, fd, 0, [this, fd](short revents) { on_listener(fd, revents); });
    }
    switch (m.type) {
        case WireMsg::SetupError:
            out_.kind = Outcome::Kind::SetupError;
            out_.err = m.err;
            out_.message = m.text;
            break;
        case WireMsg::ExecReady:
            out_.setup_ms = ms_between(t0_, m.t_ns);
            if (plan_.timings) out_.phases.emplace_back("program: privileges dropped, filters in", out_.setup_ms);
            break;
        case WireMsg::Phase:
            out_.phases.emplace_back(m.text, ms_between(t0_, m.t_ns));
            break;
        case WireMsg::ExecError:
            out_.kind = Outcome::Kind::ExecError;
            out_.err = m.err;
            out_.message = m.text;
            out_.setup_ms = -1;
            break;
        case WireMsg::Exit:
            have_exit_ = true;
            program_status_ = m.status;
            t_end_ = m.t_ns;
            exit_usage_.ru_utime = {static_cast<time_t>(m.user_us / 1000000),
                                    static_cast<suseconds_t>(m.user_us % 1000000)};
            exit_usage_.ru_stime = {static_cast<time_t>(m.sys_us / 1000000),
                                    static_cast<suseconds_t>(m.sys_us % 1000000)};
            exit_usage_.ru_maxrss = static_cast<long>(m.max_rss_kb);
            break;
        default:
            break;
    }
}

Outcome Supervisor::collect(bool reap) {
    Outcome& out = out_;
    if (!t_eof_) t_eof_ = monotonic_ns();
    struct rusage ru {};
    // Without the reap, only a reported exit says how the program ended, and
    // what it used: the init's report has the program's rusage (as it has
    // for a template's fork, which is never ours to reap).
    const bool reaped = child_ && (reap || !have_exit_);
    const int init_status = reaped ? child_->wait(&ru) : 0;
    if (child_ && (child_->adopted() || !reaped)) ru = exit_usage_;
    out.cpu_user_ms = tv_ms(ru.ru_utime);
    out.cpu_sys_ms = tv_ms(ru.ru_stime);
    double base_ms = base_rusage_ms_, total_ms = -1;
    out.max_rss_bytes = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
    // What is still in the pipes was written: counted before the figures are
    // taken (serve collects as soon as the init reports, before the relay's
    // next round).
    relay_.drain(0);
    relay_.drain(1);
    out.truncated = relay_.over_cap() || term_.over_cap();
    if (proxy_) {
        out.network = proxy_->records();
        out.network_dropped = proxy_->dropped();
    }
    if (cg_) {
        CgroupStats st = cg_->stats();
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
        if (st.cpu_ms > 0) {
            base_ms = cpu_base_ms_;
            total_ms = st.cpu_ms;  // nanosecond counts, where the split may be in ticks
        }
    }
    // A warm jail's start (python, its preloads) is not the task's: the
    // split keeps its proportions, the total is the task's own.
    if (base_ms > 0) {
        const double all = out.cpu_user_ms + out.cpu_sys_ms;
        const double task = std::max(0.0, (total_ms > 0 ? total_ms : all) - base_ms);
        if (all > 0) {
            out.cpu_user_ms = task * out.cpu_user_ms / all;
            out.cpu_sys_ms = task - out.cpu_user_ms;
        }
    }
    if (relay_.relayed(0)) out.stdout_bytes = static_cast<int64_t>(relay_.bytes(0));
    if (relay_.relayed(1)) out.stderr_bytes = static_cast<int64_t>(relay_.bytes(1));
    // What came through the jail's terminal counts as the stream it stands for.
    if (plan_.terminal & 2u)
        out.stdout_bytes = static_cast<int64_t>(term_.bytes());
    else if (plan_.terminal & 4u)
        out.stderr_bytes = static_cast<int64_t>(term_.bytes());
    out.violations = notifier_->violations();
    out.seccomp_killed = notifier_->killed_a_process();
    out.learned = notifier_->learned();
    if (plan_.timings) {
        if (t_end_) out.phases.emplace_back("jail: program ran, init reported exit", ms_between(t0_, t_end_));
        out.phases.emplace_back("supervisor: report pipe closed", ms_between(t0_, t_eof_));
        out.phases.emplace_back("supervisor: init reaped (namespaces gone)", ms_between(t0_, monotonic_ns()));
    }
    if (!t_end_) t_end_ = monotonic_ns();
    out.wall_ms = ms_between(t_task_ ? t_task_ : t0_, t_end_);
    // stockade's own cost (with many jails on one loop: the whole process's).
    struct rusage self {};
    ::getrusage(RUSAGE_SELF, &self);
    out.supervisor_cpu_ms = tv_ms(self.ru_utime) + tv_ms(self.ru_stime);
    // VmHWM rather than ru_maxrss: the latter keeps the peak of whatever ran
    // in this process before execve (a large caller that forked us).
    out.supervisor_max_rss_bytes = static_cast<uint64_t>(self.ru_maxrss) * 1024;
    if (FILE* f = std::fopen("/proc/self/status", "re")) {
        char line[128];
        while (std::fgets(line, sizeof line, f))
            if (std::strncmp(line, "VmHWM:", 6) == 0)
                out.supervisor_max_rss_bytes = std::strtoull(line + 6, nullptr, 10) * 1024;
        std::fclose(f);
    }
    // The cgroup goes with this object (after the jail is reaped): a server
    // answers first, then removes it.

    if (!out.message.empty()) {
        if (out.kind == Outcome::Kind::ExecError)
            out.exit_code = out.err == ENOENT ? kExitNotFound : kExitCannotExecute;
        return out;
    }
    if (!have_exit_) {
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
    if (WIFSIGNALED(program_status_)) {
        out.kind = Outcome::Kind::Signaled;
        out.signal = WTERMSIG(program_status_);
        // The filter's "kill" is carried out by the supervisor with SIGKILL;
        // report it as the kernel's own seccomp kill would appear.
        if (out.signal == SIGKILL && out.seccomp_killed) out.signal = SIGSYS;
    } else {
        out.kind = Outcome::Kind::Exited;
        out.exit_code = WEXITSTATUS(program_status_);
    }
    return out;
}

}  // namespace stockade::supervise
