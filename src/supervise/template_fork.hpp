// The host side of a fork from serve's template (serve/template.hpp): the
// request that hands the template python a new jail's fds and what its task
// must set up, and the task's hello. The template does in python what
// child_main and exec_program do in a cloned jail (serve/runner.py).
#pragma once
#include <sys/types.h>

#include <string>

#include "plan/plan.hpp"
#include "util/fd.hpp"

namespace stockade::supervise {

// The jail's ends, in the order the template takes them.
struct TemplateFds {
    int report, sync, filter, out, err, control;
};

// What the task makes of its fork: its own scratch mounts, /proc and ptys,
// hostname, loopback, cwd, rlimits, its user namespace's limits and quotas
// (jail::fork_sysctls), exec rules (null: none), CPU pin.
std::string template_request(const plan::Plan& plan, bool cgroup, bool exec_rules);

// Sends the request and the fds on the template's socket, without waiting:
// a fork takes tens of ms (a python fork and its namespaces), and the
// server serves meanwhile. `report` is the supervisor's end, set to receive
// the hello's sender.
void send_fork_request(int template_fd, const std::string& request, const TemplateFds& fds, int report);

// Reads one message from `report` (never blocks). Returns 0 if it was not
// the hello (or none was there); the pid of the task's init on the host,
// as the kernel tells it, with a pidfd on it, if it was. Throws Error with
// the template's own text if the fork failed, or if it ended first.
pid_t receive_hello(int report, UniqueFd& pidfd);

}  // namespace stockade::supervise
