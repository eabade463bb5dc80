// Per-namespace kernel settings the child sets for the jail before it starts
// anything: limits in the jail's own user namespace, so that no jail can
// exhaust a quota its creator shares host-wide.
#pragma once
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
// namespace's, one level down (serve/runner.py, _limit_task_namespace).
DeferredLimits set_jail_sysctls(bool template_program);
void finish_jail_sysctls(DeferredLimits limits);

}  // namespace stockade::jail
