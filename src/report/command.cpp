#include "report/command.hpp"

#include <iostream>
#include <memory>

#include "plan/host.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "report/explain.hpp"
#include "util/exit_codes.hpp"

namespace stockade::report {

int print_profile_error(const profile::ProfileError& e, bool all) {
    for (const auto& d : e.diagnostics) {
        std::cerr << "stockade: " << d.str() << "\n";
        if (!all) break;
    }
    return kExitStockadeFailed;
}

Command add_explain_command(CLI::App& app, CommandContext& ctx) {
    auto keys = std::make_shared<bool>(false);
    CLI::App* sub = app.add_subcommand("explain", "print the effective, fully resolved policy");
    add_profile_options(sub, ctx.cl);
    sub->add_flag("--keys", *keys, "list every profile key: type, default, what it does");
    return {sub, [keys, &ctx] {
                if (*keys) {
                    explain_keys(std::cout);
                    return 0;
                }
                profile::Policy p = profile::load(ctx.cl);
                plan::Invocation inv;
                inv.mode = plan::Invocation::Mode::Code;
                inv.code = "CODE";  // stands for the script or code a run would be given
                plan::Plan plan = plan::make(p, inv, plan::gather_host_facts(ctx.envp));
                explain(std::cout, p, plan);
                return 0;
            }};
}

Command add_check_command(CLI::App& app, CommandContext& ctx) {
    auto path = std::make_shared<std::string>();
    CLI::App* sub = app.add_subcommand("check", "validate a profile; prints every error");
    sub->add_option("PROFILE", *path, "built-in name or path to a .toml file")->required();
    sub->add_option("--set", ctx.cl.sets, "also apply overrides")->type_name("KEY=VALUE")->allow_extra_args(false);
    return {sub, [path, &ctx] {
                ctx.cl.profile = *path;
                try {
                    profile::Policy p = profile::load(ctx.cl);
                    std::cout << p.name << ": ok\n";
                    return 0;
                } catch (const profile::ProfileError& e) {
                    return print_profile_error(e, true);
                }
            }};
}

Command add_profiles_command(CLI::App& app, CommandContext&) {
    CLI::App* sub = app.add_subcommand("profiles", "list the built-in profiles");
    return {sub, [] {
                for (const auto& b : profile::builtins()) {
                    std::string desc;
                    try {
                        desc = profile::load_text(b.text, std::string("<builtin>/") + b.name + ".toml").description;
                    } catch (const profile::ProfileError&) {
                        desc = "(invalid)";
                    }
                    std::cout << b.name << (std::string(b.name) == profile::kDefaultProfile ? " (default)" : "") << "\t"
                              << desc << "\n";
                }
                return 0;
            }};
}

}  // namespace stockade::report
