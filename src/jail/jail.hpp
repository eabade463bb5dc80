// The jail side of a run: everything after clone3, in the new namespaces.
#pragma once
#include "jail_interface.hpp"
#include "plan/plan.hpp"

namespace stockade::jail {

// PID 1 of the jail: forks the program, reaps everything, forwards signals, and
// exits when the program does, taking whatever it left behind with it.
[[noreturn]] void run_init(const plan::Plan& plan, const ChildFds& fds);

// The program's last steps: session, fds, env, privileges, then execve.
[[noreturn]] void exec_program(const plan::Plan& plan, const ChildFds& fds);

}  // namespace stockade::jail
