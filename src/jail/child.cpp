#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "jail/caps.hpp"
#include "jail/jail.hpp"
#include "jail/rlimits.hpp"
#include "jail/mounts.hpp"
#include "jail/net.hpp"
#include "jail/sysctls.hpp"
#include "jail_interface.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/proc_title.hpp"
#include "util/exit_codes.hpp"

namespace stockade::jail {
namespace {

// Blocks until the supervisor says go: once for the id maps, once for the
// cgroup (a v1 attach runs while we build the root). EOF means it died first.
void wait_for_supervisor(int sync) {
    char c;
    ssize_t n;
    do n = ::read(sync, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(kExitStockadeFailed);
}

// PDEATHSIG only covers a parent that dies after it is set; the sync pipe's
// hang-up tells whether the supervisor is already gone.
void die_with_supervisor(int sync) {
    check(::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "prctl", "PR_SET_PDEATHSIG");
    struct pollfd p {
        sync, POLLIN, 0
    };
    if (::poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)) ::_exit(kExitStockadeFailed);
}

// The jail's terminal: a pty pair on its own devpts. The master goes out to
// the supervisor, which relays it to the caller's terminal; the slave stays
// for the program.
int open_terminal(int report) {
    UniqueFd master(check(::open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), "open", "/dev/pts/ptmx"));
    int unlock = 0;
    check(::ioctl(master.get(), TIOCSPTLCK, &unlock), "unlock", "/dev/pts/ptmx");
    int slave = check(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC), "open", "pty slave");
    WireMsg m;
    m.type = WireMsg::PtyMaster;
    int fd = master.get();
    send(report, m, &fd, 1);
    return slave;
}

// A clone of its supervisor holds a copy of every descriptor the
// supervisor had, close-on-exec or not, and an init never execs: in serve,
// the listening socket, every client's connection and other jails' pipes.
// None is the jail's. Kept, the killed server's socket still took
// connections while its jails ended, and a client the server hung up on
// did not see it while a jail cloned meanwhile lived. Only stdio and the
// jail's own ends stay.
void close_inherited(const ChildFds& fds) {
    std::array<int, 10> keep{0, 1, 2, fds.sync, fds.report, fds.script, fds.filter, fds.out, fds.err, fds.control};
    std::sort(keep.begin(), keep.end());
    unsigned from = 0;
    for (int fd : keep) {
        if (fd < 0 || static_cast<unsigned>(fd) < from) continue;
        if (static_cast<unsigned>(fd) > from) ::close_range(from, static_cast<unsigned>(fd) - 1, 0);
        from = static_cast<unsigned>(fd) + 1;
    }
    ::close_range(from, ~0U, 0);
}

}  // namespace

void child_main(const Plan& plan, ChildFds fds) {
    close_inherited(fds);
    DeferredLimits limits;
    try {
        wait_for_supervisor(fds.sync);
        phase(fds.report, plan.timings, "child: id maps received");
        limits = set_jail_sysctls(plan.template_program);
        // Not before the maps: the supervisor must still be able to open /proc/PID/uid_map.
        check(::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl", "PR_SET_DUMPABLE");
        ::umask(0);
        auto sources = open_sources(plan);
        switch_ids(plan.uid, plan.gid);
        // The id switch clears PDEATHSIG, so it is set only now.
        die_with_supervisor(fds.sync);
        check_source_access(plan, sources);
        phase(fds.report, plan.timings, "child: sources opened, ids switched");
        scrub_process_block("stockade-init");
        build_root(plan, sources, fds.script);
        sources.clear();
        phase(fds.report, plan.timings, "child: root built and pivoted");
        if (fds.script >= 0) ::close(fds.script);
        check(::sethostname(plan.hostname.data(), plan.hostname.size()), "sethostname", plan.hostname);
        if (plan.loopback_up) loopback_up();
        if (plan.proxy_port) {
            // Made here, in the jail's netns; served by the supervisor, outside it.
            int l = proxy_listener(plan.proxy_port);
            WireMsg m;
            m.type = WireMsg::ProxyListener;
            send(fds.report, m, &l, 1);
            ::close(l);
        }
        if (plan.terminal) fds.tty = open_terminal(fds.report);
        phase(fds.report, plan.timings, "child: hostname, network");
    } catch (const Error& e) {
        fail(fds.report, WireMsg::SetupError, e.code(), e.what());
    } catch (const std::exception& e) {
        fail(fds.report, WireMsg::SetupError, 0, std::string("jail setup: ") + e.what());
    }
    // The program must start inside the jail's cgroup: wait for the attach.
    wait_for_supervisor(fds.sync);
    ::close(fds.sync);
    // Re-rooted now that the supervisor has put us in the jail's cgroup (v1
    // attaches after clone): /proc/self/cgroup then shows "/", not the
    // cgroup's host path with the supervisor's pid in it.
    try {
        check(::unshare(CLONE_NEWCGROUP), "unshare", "cgroup namespace");
        finish_jail_sysctls(std::move(limits));
        if (!fds.cgroup && plan.limits.cpus > 0) pin_cpus(plan.limits.cpus);
    } catch (const Error& e) {
        fail(fds.report, WireMsg::SetupError, e.code(), e.what());
    }
    phase(fds.report, plan.timings, "child: cgroup ready");
    run_init(plan, fds);
}

}  // namespace stockade::jail
