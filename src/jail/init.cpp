#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "jail/jail.hpp"
#include "jail_interface.hpp"
#include "util/clock.hpp"

namespace stockade::jail {
namespace {

volatile sig_atomic_t g_program = 0;

// Only signals from outside the jail (the supervisor, the kernel) are passed
// on: seen from here their sender's pid is 0. The program signalling its own
// init gets nothing from it.
void forward(int sig, siginfo_t* info, void*) {
    if (info && info->si_pid != 0) return;
    if (sig == freeze_signal())
        ::kill(-1, SIGSTOP);  // every process in the jail but this one
    else if (sig == thaw_signal())
        ::kill(-1, SIGCONT);
    else if (g_program > 0)
        ::kill(g_program, sig);
}

struct SpawnArgs {
    const Plan* plan;
    const ChildFds* fds;
};

int program_entry(void* arg) {
    auto* a = static_cast<SpawnArgs*>(arg);
    exec_program(*a->plan, *a->fds);
}

// The program is started the way posix_spawn does it: CLONE_VM|CLONE_VFORK on
// a stack of its own, so no page tables are copied and no page is faulted in
// twice; the init sleeps until the program has called execve (or failed).
pid_t spawn_program(const Plan& plan, const ChildFds& fds) {
#if defined(__SANITIZE_ADDRESS__)
    // ASan cannot follow a switch to a stack it did not allocate; sanitizer
    // builds pay for a plain fork instead.
    pid_t child = ::fork();
    if (child == 0) exec_program(plan, fds);
    return child;
#endif
    constexpr size_t kStack = 512 << 10;
    void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    SpawnArgs args{&plan, &fds};
    pid_t pid = ::clone(program_entry, static_cast<char*>(stack) + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int err = errno;
    ::munmap(stack, kStack);
    errno = err;
    return pid;
}

void report_exit(int report_fd, int status) {
    WireMsg m;
    m.type = WireMsg::Exit;
    m.status = status;
    m.t_ns = monotonic_ns();
    // What the program and everything reaped here used: a server answers on
    // this report, before it reaps the init (Supervisor::exited).
    struct rusage ru {};
    if (::getrusage(RUSAGE_CHILDREN, &ru) == 0) {
        m.user_us = static_cast<uint64_t>(ru.ru_utime.tv_sec) * 1000000u + static_cast<uint64_t>(ru.ru_utime.tv_usec);
        m.sys_us = static_cast<uint64_t>(ru.ru_stime.tv_sec) * 1000000u + static_cast<uint64_t>(ru.ru_stime.tv_usec);
        m.max_rss_kb = static_cast<uint64_t>(ru.ru_maxrss);
    }
    send(report_fd, m);
}

}  // namespace

void run_init(const Plan& plan, const ChildFds& fds) {
    const int report_fd = fds.report;
    // Out of the caller's foreground process group: a Ctrl-C reaches the
    // supervisor once and comes here through it, not twice.
    ::setsid();

    sigset_t all, old;
    ::sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, &old);
    struct sigaction sa {};
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    ::sigemptyset(&sa.sa_mask);
    for (int sig : kRelayedSignals) ::sigaction(sig, &sa, nullptr);
    ::sigaction(freeze_signal(), &sa, nullptr);
    ::sigaction(thaw_signal(), &sa, nullptr);

    pid_t program = spawn_program(plan, fds);
    if (program < 0) fail(report_fd, WireMsg::SetupError, errno, std::string("fork program: ") + std::strerror(errno));
    g_program = program;
    for (int fd : {fds.filter, fds.out, fds.err, fds.tty, fds.control})
        if (fd >= 0) ::close(fd);

    // The init must not keep the caller's stdio open: whoever reads the program's
    // output sees EOF when the program and its children are done with it.
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
        if (null > 2) ::close(null);
    }
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    sigset_t fwd;
    ::sigemptyset(&fwd);
    for (int sig : kRelayedSignals) ::sigaddset(&fwd, sig);
    ::sigaddset(&fwd, freeze_signal());
    ::sigaddset(&fwd, thaw_signal());
    ::sigprocmask(SIG_UNBLOCK, &fwd, nullptr);

    int status = 0;
    bool done = false;
    while (true) {
        int st;
        pid_t r = ::waitpid(-1, &st, __WALL);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;  // ECHILD: nothing left in the jail
        }
        if (r == program) {
            status = st;
            done = true;
            g_program = 0;
            // A template's forks are jails of their own, each with its own
            // supervisor: they outlive it, and this init reaps them as they
            // end. The server hears of the template's end now.
            if (plan.template_program) report_exit(report_fd, status);
        }
        // Once the program is gone, whatever it left behind (daemons, orphans)
        // goes too; repeated after each reap in case something forked meanwhile.
        if (done && !plan.template_program) ::kill(-1, SIGKILL);
    }

    if (!plan.template_program) report_exit(report_fd, status);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

}  // namespace stockade::jail
