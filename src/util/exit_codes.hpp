// stockade's own exit statuses, named once: the CLI, the jail's child (which
// exits with them before the program runs) and the result all use these.
//   125  stockade itself failed (bad profile, bad flag, jail setup)
//   126  the program could not be executed, or the profile does not allow it
//   127  the program was not found inside the jail
//   124  stockade ended it at a time limit (as timeout(1) does)
#pragma once

namespace stockade {

inline constexpr int kExitStockadeFailed = 125;
inline constexpr int kExitCannotExecute = 126;
inline constexpr int kExitNotFound = 127;
inline constexpr int kExitTimeout = 124;

}  // namespace stockade
