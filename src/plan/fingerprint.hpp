// A Plan's fingerprint: every field that changes what the jail may do, in one
// canonical encoding (each field named and length-prefixed), hashed. Two
// results with the same profile.hash ran under the same resolved policy; what
// was run (the code, the script's path) and how it was reported (timings, a
// terminal) are not part of it.
#pragma once
#include <string>

#include "plan/plan.hpp"

namespace stockade::plan {

std::string canonical(const Plan& p);
std::string fingerprint(const Plan& p);  // 16 hex digits

}  // namespace stockade::plan
