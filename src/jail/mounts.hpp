// The jail's root: a fresh tmpfs populated from the Plan's mount table, then
// pivoted into. Runs in the child, inside its new user and mount namespaces.
#pragma once
#include "jail_interface.hpp"
#include <vector>

#include "plan/plan.hpp"
#include "util/fd.hpp"

namespace stockade::jail {

// O_PATH fds for every Bind/Device source, index-aligned with plan.mounts (others
// stay empty). Opened with the caller's own host credentials, before the ids are
// switched, so root can name paths below 0700 directories it owns.
std::vector<UniqueFd> open_sources(const Plan& plan);

// After the switch to the jail's ids: a source the jail's user cannot use is an
// error now rather than a puzzling EACCES inside python later.
void check_source_access(const Plan& plan, const std::vector<UniqueFd>& sources);

// Builds the root from the plan, pivots into it and detaches the host's root.
// script_fd is the caller's script (for the Script op), or -1.
void build_root(const Plan& plan, const std::vector<UniqueFd>& sources, int script_fd);

}  // namespace stockade::jail
