// `stockade serve` on the command line, and the pool options mcp shares.
#pragma once
#include "subcommand.hpp"
#include "serve/server.hpp"

namespace stockade::serve {

// --pool, --preload, --max-jails, --max-sessions, --idle-timeout.
void add_pool_options(CLI::App* sub, ServeOptions& so, double& idle_s);

Command add_serve_command(CLI::App& app, CommandContext& ctx);

}  // namespace stockade::serve
