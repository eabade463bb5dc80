// Per-namespace kernel settings the child sets for the jail before it starts
// anything: limits in the jail's own user namespace, so that no jail can
// exhaust a quota its creator shares host-wide.
#pragma once
#include "util/fd.hpp"

namespace stockade::jail {

// Writes them through the host's /proc (they resolve against the caller's
// namespaces: the jail's), before the root is pivoted. Settings this kernel
// does not have are skipped; the supervisor reports those (host_lacks_*).
// Returns the one that must wait: max_mnt_namespaces, since building the root
// makes detached mount trees (open_tree), which count. Write "0" to it (with
// finish_jail_sysctls) once the root is built; the fd outlives the pivot.
UniqueFd set_jail_sysctls();
void finish_jail_sysctls(UniqueFd mnt_limit);


}  // namespace stockade::jail
