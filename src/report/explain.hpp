// `stockade explain`: the effective policy, fully resolved, for a person to read.
#pragma once
#include <ostream>

#include "profile/policy.hpp"
#include "plan/plan.hpp"

namespace stockade::report {

void explain(std::ostream& out, const profile::Policy& policy, const plan::Plan& plan);

// `stockade explain --keys`: every profile key, from the schema's own rows.
void explain_keys(std::ostream& out);

}  // namespace stockade::report
