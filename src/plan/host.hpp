// Facts about the caller that plan() takes as input.
#pragma once
#include "plan/plan.hpp"

namespace stockade::plan {

HostFacts gather_host_facts(char** envp);

}  // namespace stockade::plan
