#include "doctor/command.hpp"

#include <memory>

#include "doctor/doctor.hpp"

namespace stockade::doctor {

Command add_doctor_command(CLI::App& app, CommandContext& ctx) {
    auto opt = std::make_shared<Options>();
    CLI::App* sub =
        app.add_subcommand("doctor", "check what stockade needs on this host, with the fix for each failure");
    add_profile_options(sub, ctx.cl);
    sub->add_flag("--json", opt->json, "the checks as JSON, for tools");
    sub->add_flag("--clean", opt->clean, "remove cgroups left by stockades that were killed");
    sub->footer("Exit status: 0 the profile runs as intended; 1 it runs degraded; 2 it cannot run.");
    return {sub, [opt, &ctx] { return run(ctx.cl, *opt); }};
}

}  // namespace stockade::doctor
