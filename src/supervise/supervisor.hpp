// The host side of one jail: start() creates its cgroup, clones it into new
// namespaces, writes its id maps and lets it go; then, as an event source,
// it serves the jail's fds (the report socket, the wall and CPU timers, the
// output relays, the terminal, the seccomp listeners, the proxy) until done();
// collect() reaps it and says how it ended. Nothing here is process-wide
// except the terminal's job control, so one loop can drive many Supervisors.
#pragma once
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "plan/plan.hpp"
#include "supervise/notifier.hpp"
#include "supervise/event_loop.hpp"
#include "supervise/outcome.hpp"
#include "supervise/relay.hpp"
#include "supervise/terminal.hpp"
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
    JailProcess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
    JailProcess(const JailProcess&) = delete;
    JailProcess& operator=(const JailProcess&) = delete;
    ~JailProcess();
    pid_t pid() const { return pid_; }
    int pidfd() const { return pidfd_.get(); }
    void kill(int sig);
    // wait4: its rusage covers the init and everything the init reaped.
    int wait(struct rusage* ru);

private:
    pid_t pid_;
    UniqueFd pidfd_;
    bool reaped_ = false;
};

class Supervisor : public Source {
public:
    // The plan must outlive the Supervisor.
    explicit Supervisor(const plan::Plan& plan);
    ~Supervisor() override;
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Throws Error when the jail cannot be started; nothing is left behind then.
    void start();
    // The jail has ended and everything it wrote has been passed on.
    bool done() const;
    // Reaps the jail and reads its figures. Once, after done().
    supervise::Outcome collect();

    // A signal for the jail from its caller: passed to the program, or, with a
    // terminal, job control (suspend on SIGTSTP/SIGTTIN/SIGTTOU, resume on
    // SIGCONT, resize on SIGWINCH).
    void signal(int sig);
    // Ends the jail at once (its caller is gone).
    void kill();

    void fill(std::vector<pollfd>& fds) override;
    void handle(const pollfd* fds, size_t n) override;
    int timeout_ms() const override { return timeout_; }

private:
    void mark(const char* name);
    void arm_wall(uint64_t ms);
    void on_report();
    void on_wall();
    void on_cpu_check();
    void suspend();

    const plan::Plan& plan_;
    supervise::Outcome out_;
    std::unique_ptr<Cgroup> cg_;
    OutputRelay relay_;
    TerminalRelay term_;
    std::unique_ptr<JailProcess> child_;
    UniqueFd report_, sync_, wall_, cpu_check_;
    std::unique_ptr<supervise::Notifier> notifier_;
    std::unique_ptr<Proxy> proxy_;
    uint64_t t0_ = 0, t_end_ = 0, t_eof_ = 0;
    bool open_ = false, have_exit_ = false, seccomp_kill_sent_ = false, collected_ = false;
    int program_status_ = 0;
    int timeout_ = -1;
    // Where this round's fds sit in what fill() appended.
    int slot_report_ = -1, slot_wall_ = -1, slot_cpu_ = -1, slot_relay_[2] = {-1, -1};
    size_t first_listener_ = 0, first_term_ = 0, first_proxy_ = 0, end_ = 0;
};

}  // namespace stockade::supervise
