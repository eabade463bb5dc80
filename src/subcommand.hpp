// How a subcommand plugs into the command line: each room registers its own
// in one small function (serve/command.cpp, mcp/command.cpp, ...), and main()
// only calls them, parses, and runs the one that was chosen.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "profile/loader.hpp"
#include "profile/limits.hpp"

namespace stockade {

// What every command may read, filled in before and during the parse.
struct CommandContext {
    profile::CommandLine cl;  // -p, --ro, --set and the limit flags
    char** envp = nullptr;
    uint64_t t_main = 0;                    // when main() began (for --timings)
    std::vector<std::string> after_dashes;  // argv after the first "--", untouched by parsing
    // The limit flags' values, by row of the limits table; added to cl.sets before a command runs.
    std::vector<std::pair<const profile::LimitRow*, std::string>> limit_flags;
    const CLI::App* app = nullptr;  // the whole command line (for completions)
};

struct Command {
    CLI::App* sub = nullptr;
    std::function<int()> run;
    // Told when the command fails with stockade's own error, before that is
    // printed (run and exec write it to --result).
    std::function<void(const std::string&)> on_error;
};

// The options that choose and adjust the profile (-p, --ro, --rw, --env,
// --env-pass, --cwd, --set).
void add_profile_options(CLI::App* sub, profile::CommandLine& cl);
// The limits table's flags (--timeout, --memory, ...), each setting its key.
void add_limit_flags(CLI::App* sub, CommandContext& ctx, bool with_type);
// The limit flags given, as --set assignments in ctx.cl.
void apply_limit_flags(CommandContext& ctx);
// -q and -v of the long-running modes (serve, mcp); apply_log_flags sets the level.
void add_log_flags(CLI::App* sub, int& quiet, int& verbose);
void apply_log_flags(int quiet, int verbose);

}  // namespace stockade
