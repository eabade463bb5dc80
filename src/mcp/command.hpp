// `stockade mcp` on the command line: the operator's choices, which become
// the arguments of each private `stockade serve`.
#pragma once
#include "subcommand.hpp"

namespace stockade::mcp {

Command add_mcp_command(CLI::App& app, CommandContext& ctx);

}  // namespace stockade::mcp
