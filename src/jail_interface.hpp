// The contract between the supervisor (supervise/) and the jail (jail/, inside
// the namespaces): the one place each of these is written down.
//  - the fds, last-step syscalls and relayed signals (jail_abi.hpp, which the
//    filter also builds on);
//  - the init's freeze/thaw pair;
//  - the messages from the jail (its init and the program before exec).
// Messages are fixed-size records below PIPE_BUF, so each write is atomic and
// never interleaves.
#pragma once
#include <signal.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "jail_abi.hpp"
#include "plan/plan.hpp"
#include "util/exit_codes.hpp"

namespace stockade::jail {

// The jail side reads the Plan it was given, nothing else.
using plan::MountOp;
using plan::Plan;

struct WireMsg {
    enum Type : uint32_t {
        SetupError = 1,     // the jail could not be built; text says what failed
        ExecReady = 2,      // the program is about to execve; t_ns is when; the seccomp listener rides along
        ExecError = 3,      // execve failed (err) or the profile refused the program
        Exit = 4,           // the program ended; status is its wait status
        Phase = 5,          // a setup step finished at t_ns (only when the plan asks for timings)
        ProxyListener = 7,  // the proxy's listening socket, made in the jail's netns
        PtyMaster = 8,      // the master of the jail's terminal, for the supervisor to relay
        Hello = 9,          // a template's fork: its task's init is there (the kernel adds its pid)
    };
    uint32_t type = 0;
    int32_t err = 0;
    int32_t status = 0;
    uint32_t pad = 0;
    uint64_t t_ns = 0;  // CLOCK_MONOTONIC
    // Exit: the rusage of the program and of what the init reaped (for a
    // template's fork, whose init is not our child to wait for, the only one).
    uint64_t user_us = 0, sys_us = 0, max_rss_kb = 0;
    char text[456] = {};

    void set_text(const std::string& s) {
        std::strncpy(text, s.c_str(), sizeof text - 1);
        text[sizeof text - 1] = '\0';
    }
};
static_assert(sizeof(WireMsg) <= 512);

// Sent by the supervisor to the jail's init, which acts on them only when they
// come from outside the jail: stop every process in the jail (the caller's
// job was suspended with Ctrl-Z), and let them run again.
inline int freeze_signal() { return SIGRTMAX - 1; }
inline int thaw_signal() { return SIGRTMAX; }

// Best effort: the jail side has nowhere else to report a failure to report.
// Always sendmsg(2), the one call the seccomp filter lets through on this
// socket whatever the profile allows.
void send(int fd, const WireMsg& m, const int* fds = nullptr, int nfds = 0) noexcept;
// Receives one record (and up to max_fds passed fds, close-on-exec). Returns
// false at EOF or on a short record.
bool receive(int fd, WireMsg& m, int* fds, int max_fds, int* nfds);
// The jail side's one way to fail: one record to the supervisor (which shows
// its text as stockade's one line), then _exit(code).
[[noreturn]] void fail(int fd, WireMsg::Type type, int err, const std::string& text,
                       int code = kExitStockadeFailed) noexcept;
// Marks the end of a setup step, when timings were asked for.
void phase(int fd, bool enabled, const char* name) noexcept;

struct ChildFds {
    int sync = -1;            // read end: one byte once the id maps are written
    int report = -1;          // write end: WireMsg records to the supervisor
    int script = -1;          // the caller's script, or -1
    int filter = -1;          // read end: the compiled seccomp filters, from the supervisor
    int out = -1;             // write ends of the output relay for fds 1 and 2, or -1 to pass
    int err = -1;             // the caller's own through
    int tty = -1;             // the slave of the jail's pseudo-terminal (set by the child when Plan::terminal)
    int control = -1;         // serve: the runner's socket to the server, kept at kControlFd, or -1
    bool cgroup = false;      // decided by the supervisor: the limits live in a cgroup (else rlimits stand in)
    bool exec_rules = false;  // decided by the supervisor: the kernel has Landlock (ABI 2) for Plan::exec_rules
};

// The cloned child: builds the jail, then becomes its init. Never returns.
[[noreturn]] void child_main(const plan::Plan& plan, ChildFds fds);

}  // namespace stockade::jail
