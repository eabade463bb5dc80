#include "supervise/launch.hpp"

#include <grp.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "jail_interface.hpp"
#include "supervise/event_loop.hpp"
#include "supervise/supervisor.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::supervise {
namespace {

// The caller's signals, read from a signalfd and handed to the one jail.
class CallerSignals : public Source {
public:
    CallerSignals(const sigset_t& set, Supervisor& jail)
        : fd_(check(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd")), jail_(jail) {}
    void fill(std::vector<pollfd>& fds) override { fds.push_back({fd_.get(), POLLIN, 0}); }
    void handle(const pollfd* fds, size_t n) override {
        if (n != 1 || !(fds[0].revents & POLLIN)) return;
        struct signalfd_siginfo si;
        while (::read(fd_.get(), &si, sizeof si) == sizeof si) jail_.signal(static_cast<int>(si.ssi_signo));
    }

private:
    UniqueFd fd_;
    Supervisor& jail_;
};

}  // namespace

Outcome launch(const plan::Plan& plan) {
    sigset_t caller;
    ::sigemptyset(&caller);
    for (int s : jail::kRelayedSignals) ::sigaddset(&caller, s);
    // With a terminal, job control and the window size are ours to handle.
    if (plan.terminal)
        for (int s : {SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGWINCH}) ::sigaddset(&caller, s);
    ::sigprocmask(SIG_BLOCK, &caller, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    // Root's supplementary groups (0 and friends) would otherwise follow it into
    // the jail, and after setgroups=deny the jail could never shed them.
    if (plan.clear_host_groups) check(::setgroups(0, nullptr), "setgroups", "(clear root's groups)");

    Supervisor jail(plan);
    jail.start();
    CallerSignals signals(caller, jail);
    EventLoop loop;
    loop.add(&jail);
    loop.add(&signals);
    while (!jail.done()) loop.run_once();
    return jail.collect();
}

}  // namespace stockade::supervise
