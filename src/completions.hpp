// Shell completions generated from the CLI's own definition (CLI11), so they
// never drift from it: `stockade completions bash|zsh|fish`.
#pragma once
#include <CLI/CLI.hpp>

#include <ostream>
#include <string>

#include "subcommand.hpp"

namespace stockade {

// Throws std::invalid_argument for an unknown shell.
void write_completions(std::ostream& out, const CLI::App& app, const std::string& shell);

Command add_completions_command(CLI::App& app, CommandContext& ctx);

}  // namespace stockade
