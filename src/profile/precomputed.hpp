// The built-in profiles, loaded and validated at build time by
// tools/policygen.cpp, as the filters are by tools/bpfgen.cpp: a run of a
// built-in profile without --set parses no TOML. A test checks that each one
// equals what the loader makes of the profile's text.
#pragma once
#include <string_view>

#include "profile/policy.hpp"

namespace stockade::profile {

// nullptr when `name` has none. Defined by the generated
// precomputed_policies.cpp in the stockade binary and the unit tests; the weak
// default (none) serves the build-time generators.
const Policy* precomputed_policy(std::string_view name);

}  // namespace stockade::profile
