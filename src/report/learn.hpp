// `--learn FILE`: the profile fragment that allows exactly the syscalls a run used.
#pragma once
#include <set>
#include <string>

#include "util/safe_file.hpp"

namespace stockade::report {

// Writes a profile that extends `base` with seccomp.allow set to `used` (plus
// the few calls stockade itself needs to start the program). Throws Error.
void write_learned_profile(const HostFile& file, const std::string& base, const std::string& command,
                           const std::set<std::string>& used);

}  // namespace stockade::report
