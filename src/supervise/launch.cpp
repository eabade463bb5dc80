#include "supervise/launch.hpp"

#include <grp.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "jail_interface.hpp"
#include "supervise/supervisor.hpp"
#include "util/error.hpp"
#include "util/event_loop.hpp"
#include "util/fd.hpp"

namespace stockade::supervise {

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

    EventLoop loop;
    Supervisor jail(plan, loop);
    jail.start();
    // The caller's signals, from a signalfd, handed to the one jail.
    UniqueFd signals(check(::signalfd(-1, &caller, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
    IoWatch on_signal(loop, signals.get(), POLLIN, [&](short) {
        struct signalfd_siginfo si;
        while (::read(signals.get(), &si, sizeof si) == sizeof si) jail.signal(static_cast<int>(si.ssi_signo));
    });
    while (!jail.done()) loop.run_once();
    return jail.collect();
}

}  // namespace stockade::supervise
