// Facts about the caller that plan() takes as input.
#pragma once
#include "sandbox/plan.hpp"

namespace stockade::sandbox {

HostFacts gather_host_facts(char** envp);

}  // namespace stockade::sandbox
