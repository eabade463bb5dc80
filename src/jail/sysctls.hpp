// Per-namespace kernel settings the child sets for the jail before it starts
// anything: limits in the jail's own user namespace, so that no jail can
// exhaust a quota its creator shares host-wide.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "util/fd.hpp"

namespace stockade::jail {

// Writes them through /proc/sys before the root is pivoted; /proc/sys/user
// shows the writer's own user namespace, which is the jail's. Settings this
// kernel does not have (ENOENT) are skipped; a read-only /proc/sys (a
// container's) is an error that names the engine's fix.
// Returns the ones that must wait, open: max_mnt_namespaces (building the root
// makes detached mount trees, which count) and max_cgroup_namespaces (the
// child re-roots its cgroup namespace once attached). finish_jail_sysctls
// writes 0 to them just before the init starts; the fds outlive the pivot.
struct DeferredLimits {
    UniqueFd mnt, cgroup;
};
// A template's jail (Plan::template_program) must let each fork make a user
// namespace, and the rest inside it (counts are charged to every namespace up
// the chain): only time namespaces go to 0 there, and the inotify and
// fanotify quotas hold for all its forks together. Each fork sets its own
// namespace's, one level down: fork_sysctls.
DeferredLimits set_jail_sysctls(bool template_program);
void finish_jail_sysctls(DeferredLimits limits);

// A jail's share of a quota its creator has: an eighth, and at least one.
long quota_share(long parent);

// What a fork of a template sets in its own user namespace, by name under
// /proc/sys/user (serve/runner.py writes them; supervise/template_fork.cpp
// sends them): no namespace of any kind (cgroup's is the runner's to zero,
// once its init has made the one it needs), and a share of the template
// jail's quotas, which are a share of the host's. Every fork of one template
// is one user at the template's level, so without a share of its own one
// task could take them all from the tasks beside it. Read on the host:
// fs.inotify and fs.fanotify show the initial namespace's values anywhere.
std::vector<std::pair<std::string, long>> fork_sysctls();

}  // namespace stockade::jail
