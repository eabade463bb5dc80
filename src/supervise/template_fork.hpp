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
// hostname, loopback, cwd, rlimits, exec rules (null: none), CPU pin.
std::string template_request(const plan::Plan& plan, bool cgroup, bool exec_rules);

// Sends the request and the fds on the template's socket, then waits (at
// most 10 s) for the task's init to say hello on `report` (the supervisor's
// end); the kernel tells its pid on the host. Returns that pid with a pidfd
// on it. Throws Error with the template's own text if the fork failed first.
pid_t fork_from_template(int template_fd, const std::string& request, const TemplateFds& fds, int report,
                         UniqueFd& pidfd);

}  // namespace stockade::supervise
