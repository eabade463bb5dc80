// How a run's outcome becomes stockade's exit status and the one line on stderr.
//
//   N        the program exited with N
//   128+N    the program was killed by signal N
//   125      stockade itself failed (bad profile, bad flag, jail setup)
//   126      the program could not be executed, or the profile does not allow it
//   127      the program was not found inside the jail
//   124      stockade ended it: wall-clock or CPU time limit (as timeout(1) does)
//   137      stockade ended it at the output cap (output_action = "kill")
#pragma once
#include <ostream>
#include <string>

#include "supervise/outcome.hpp"
#include "plan/plan.hpp"
#include "util/exit_codes.hpp"

namespace stockade::report {

using stockade::kExitCannotExecute;
using stockade::kExitNotFound;
using stockade::kExitStockadeFailed;
using stockade::kExitTimeout;

int exit_status(const supervise::Outcome& o, const plan::Plan& plan);

// "" when nothing needs saying (the program exited on its own). Says which
// limit stopped the program and which flag raises it.
std::string summary_line(const supervise::Outcome& o, const plan::Plan& plan);

// The setup steps of one run and how long each took, for `--timings`.
void print_timings(std::ostream& out, double before_launch_ms, const supervise::Outcome& o);

}  // namespace stockade::report
