// `stockade doctor` on the command line.
#pragma once
#include "subcommand.hpp"

namespace stockade::doctor {

Command add_doctor_command(CLI::App& app, CommandContext& ctx);

}  // namespace stockade::doctor
