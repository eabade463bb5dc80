// The host side of one jail: start() creates its cgroup, clones it into new
// namespaces, writes its id maps and lets it go; then, from the loop it was
// given, it serves the jail's fds (the report socket, the wall and CPU timers,
// the output relays, the terminal, the seccomp listeners, the proxy) until done();
// collect() reaps it and says how it ended. What is process-wide: the
// terminal's job control, and the proxy's connection budget (one fd table
// for every jail, supervise/proxy.hpp); so one loop drives many Supervisors.
#pragma once
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "plan/plan.hpp"
#include "seccomp/spec.hpp"
#include "supervise/notifier.hpp"
#include "supervise/outcome.hpp"
#include "supervise/relay.hpp"
#include "supervise/terminal.hpp"
#include "util/event_loop.hpp"
#include "util/fd.hpp"

namespace stockade::supervise {
class Cgroup;
}

namespace stockade::supervise {

class Proxy;

// The jail's init, owned through a pidfd: killed and reaped on every path, so
// an exception never leaves a jail running behind us.
class JailProcess {
public:
    // adopted: forked by serve's template, not by us. Its parent reaps it; we
    // only see it end (its pidfd turns readable), and its report says how.
    JailProcess(pid_t pid, int pidfd, bool adopted = false) : pid_(pid), pidfd_(pidfd), adopted_(adopted) {}
    JailProcess(const JailProcess&) = delete;
    JailProcess& operator=(const JailProcess&) = delete;
    ~JailProcess();
    pid_t pid() const { return pid_; }
    int pidfd() const { return pidfd_.get(); }
    bool adopted() const { return adopted_; }
    void kill(int sig);
    // wait4: its rusage covers the init and everything the init reaped.
    int wait(struct rusage* ru);

private:
    pid_t pid_;
    UniqueFd pidfd_;
    bool adopted_ = false;
    bool reaped_ = false;
};

class Supervisor {
public:
    struct Options {
        // serve: stdout and stderr kept in memory for the answer, never
        // passed to our own fds.
        bool capture = false;
        // serve: a warm jail. Its program holds a control socket to us at
        // jail::kControlFd; its clock and CPU budget start at begin_task().
        bool warm = false;
        // serve: the jail is forked by this template (its end of the fork
        // socket, serve/template.hpp) rather than cloned; -1: cloned.
        int template_fd = -1;
    };
    // The plan and the loop must outlive the Supervisor.
    Supervisor(const plan::Plan& plan, EventLoop& loop) : Supervisor(plan, loop, Options{}) {}
    Supervisor(const plan::Plan& plan, EventLoop& loop, Options opt);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Throws Error when the jail cannot be started; nothing is left behind then.
    void start();
    // The jail has ended and everything it wrote has been passed on.
    bool done() const;
    // Reaps the jail and reads its figures. Once, after done().
    supervise::Outcome collect() { return collect(true); }
    // The init has reported the program's end, with nothing left running in
    // the jail: its output is all in the pipes and its cgroup's figures are
    // final. A server answers from here (collect(false), no reap: the figures
    // come from the cgroup) and destroys the jail after.
    bool exited() const { return have_exit_; }
    // The program's own word that it has ended with this exit code (serve's
    // runner: its output flushed and closed, its answer sent, and only its
    // exit left, whose teardown of a forked python's memory takes a
    // millisecond and more before the init can report it). Taken, as
    // exited(), only where nothing else holds its output open and the cgroup
    // has its figures; otherwise the init's report is waited for. A program
    // that says so early ends its own task early, as exiting would.
    bool end_as_reported(int exit_code);
    // Why the jail failed to start, as far as this side knows ("" if not).
    const std::string& setup_error() const { return out_.message; }
    supervise::Outcome collect(bool reap);

    // A signal for the jail from its caller: passed to the program, or, with a
    // terminal, job control (suspend on SIGTSTP/SIGTTIN/SIGTTOU, resume on
    // SIGCONT, resize on SIGWINCH).
    void signal(int sig);
    // Ends the jail at once (its caller is gone).
    void kill();

    // Warm jails (Options::warm): the server's end of the control socket.
    int control_fd() const { return control_.get(); }
    // The init has exited, or the program has closed (or written on) its
    // control socket, whether or not the loop has had its round to see it:
    // a waiting jail that is no longer waiting. A poll of two fds, no wait.
    bool gone_unseen() const;
    // The task starts now: the wall clock (0: none) and the CPU budget run
    // from here, and the figures in the outcome count from here.
    void begin_task(uint64_t wall_ms);
    // The same clock with the caller's own action at its end, in place of
    // the wall-clock limit's SIGTERM and SIGKILL (a session's cell: SIGINT,
    // and the session lives on). Fires once; 0 disarms it.
    void set_deadline(uint64_t ms, std::function<void()> fire);
    // Capture: what the program wrote so far, all of it that the pipes hold;
    // the output cap starts again for the next window (a session's next cell).
    std::pair<std::string, std::string> take_output(bool* truncated);
    // The jail's pid on the host (its init), and its pidfd (readable once
    // the init has ended); -1 before it has one.
    pid_t pid() const;
    int pidfd() const;
    // The jail's share of a contended CPU (Cgroup::set_cpu_weight); nothing
    // without a cgroup.
    void set_cpu_weight(unsigned weight);

private:
    void start_from_template(Pipe& sync, Pipe& filter, Pipe& report, UniqueFd& control_jail, bool exec_rules);
    void close_jail_ends(Pipe& sync, Pipe& filter, Pipe& report, UniqueFd& control_jail);
    void on_hello();
    void fork_failed(const std::string& why);
    void close_report();
    void finish_start(Pipe& filter, Pipe& report);
    void mark(const char* name);
    void arm_wall(uint64_t ms);
    void arm_cpu_check();
    void on_report();
    void on_wall();
    void on_cpu_check();
    void suspend();
    void watch_fds();
    void prepare();
    void after_event();
    void on_listener(int fd, short revents);

    const plan::Plan& plan_;
    EventLoop& loop_;
    Options opt_;
    seccomp::Spec spec_;  // the plan's, narrowed by what this run decided (no cgroup: no affinity changes)
    supervise::Outcome out_;
    std::unique_ptr<Cgroup> cg_;
    OutputRelay relay_;
    TerminalRelay term_;
    std::unique_ptr<JailProcess> child_;
    UniqueFd report_, sync_, wall_, cpu_check_, control_;
    double cpu_base_ms_ = 0;  // the cgroup's CPU total when the task began (warm jails)
    std::unique_ptr<supervise::Notifier> notifier_;
    std::unique_ptr<Proxy> proxy_;
    uint64_t t0_ = 0, t_end_ = 0, t_eof_ = 0, t_task_ = 0;
    double base_rusage_ms_ = 0;  // the same, from /proc, when there is no cgroup
    bool open_ = false, have_exit_ = false, seccomp_kill_sent_ = false;
    // A fork from a template: a jail without an init until its hello, or
    // one that failed before it had one.
    bool awaiting_hello_ = false, no_child_ = false;
    Timer hello_wait_;
    int program_status_ = 0;
    struct rusage exit_usage_ {};     // a template's fork: as its init reported it
    std::function<void()> deadline_;  // set_deadline's action, while armed
    // The fds above on the loop; the notifier's pause when a jail's refused
    // calls are answered at the bounded rate.
    IoWatch report_w_, wall_w_, cpu_w_, relay_w_[2];
    std::vector<IoWatch> listener_w_;
    Timer notify_wait_;
    Hook prepare_;
};

}  // namespace stockade::supervise
