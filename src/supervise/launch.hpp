// A one-shot run: one Supervisor on an event loop of its own, with the
// caller's signals passed to it. (serve drives many from one loop.)
#pragma once
#include "plan/plan.hpp"
#include "supervise/outcome.hpp"

namespace stockade::supervise {

// Throws Error for failures before the jail exists (the script cannot be read,
// clone3 refused); failures inside the jail come back as an Outcome.
Outcome launch(const plan::Plan& plan);

}  // namespace stockade::supervise
