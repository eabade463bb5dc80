// Per-namespace kernel settings the child sets for the jail before it starts
// anything: limits in the jail's own user namespace, so that no jail can
// exhaust a quota its creator shares host-wide.
#pragma once
#include "util/fd.hpp"

namespace stockade::jail {

// Writes them through the host's /proc (they resolve against the caller's
// namespaces: the jail's), before the root is pivoted. Settings this kernel
// does not have are skipped; the supervisor reports those (host_lacks_*).
// Returns the ones that must wait, open: max_mnt_namespaces (building the root
// makes detached mount trees, which count) and max_cgroup_namespaces (the
// child re-roots its cgroup namespace once attached). finish_jail_sysctls
// writes 0 to them just before the init starts; the fds outlive the pivot.
struct DeferredLimits {
    UniqueFd mnt, cgroup;
};
DeferredLimits set_jail_sysctls();
void finish_jail_sysctls(DeferredLimits limits);


}  // namespace stockade::jail
