// The commands that only read profiles and print: explain, check, profiles.
#pragma once
#include "subcommand.hpp"

namespace stockade::report {

Command add_explain_command(CLI::App& app, CommandContext& ctx);
Command add_check_command(CLI::App& app, CommandContext& ctx);
Command add_profiles_command(CLI::App& app, CommandContext& ctx);

// Every diagnostic (or the first), one line each; returns exit status 125.
int print_profile_error(const profile::ProfileError& e, bool all);

}  // namespace stockade::report
