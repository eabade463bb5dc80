// `stockade run` and `stockade exec`: one jail, start to end. The path of a
// run is the rooms' in order: profile::load -> plan::make ->
// supervise::launch -> report.
#pragma once
#include "subcommand.hpp"

namespace stockade {

Command add_run_command(CLI::App& app, CommandContext& ctx);
Command add_exec_command(CLI::App& app, CommandContext& ctx);

}  // namespace stockade
