// The jail side of a run: everything after clone3, in the new namespaces.
#pragma once
#include "jail_interface.hpp"
#include "sandbox/plan.hpp"

namespace stockade::sandbox {

struct ChildFds {
    int sync = -1;    // read end: one byte once the id maps are written
    int report = -1;  // write end: WireMsg records to the supervisor
    int script = -1;  // the caller's script, or -1
    int filter = -1;  // read end: the compiled seccomp filters, from the supervisor
    int out = -1;     // write ends of the output relay for fds 1 and 2, or -1 to pass
    int err = -1;     // the caller's own through
    int tty = -1;     // the slave of the jail's pseudo-terminal (set by the child when Plan::terminal)
    bool cgroup = false;  // decided by the supervisor: the limits live in a cgroup (else rlimits stand in)
};

// The cloned child: builds the jail, then becomes its init. Never returns.
[[noreturn]] void child_main(const Plan& plan, ChildFds fds);

// PID 1 of the jail: forks the program, reaps everything, forwards signals, and
// exits when the program does, taking whatever it left behind with it.
[[noreturn]] void run_init(const Plan& plan, const ChildFds& fds);

// The program's last steps: session, fds, env, privileges, then execve.
[[noreturn]] void exec_program(const Plan& plan, const ChildFds& fds);

}  // namespace stockade::sandbox
