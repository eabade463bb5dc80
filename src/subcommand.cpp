#include "subcommand.hpp"

#include "profile/limits.hpp"
#include "util/log.hpp"

namespace stockade {

void add_profile_options(CLI::App* sub, profile::CommandLine& cl) {
    sub->add_option("-p,--profile", cl.profile, "built-in profile name or path to a .toml file (default: python)");
    sub->add_option("--ro", cl.ro, "bind SRC read-only at DST (default: same path)")
        ->type_name("SRC[:DST]")
        ->allow_extra_args(false);
    sub->add_option("--rw", cl.rw, "bind SRC read-write at DST")->type_name("SRC[:DST]")->allow_extra_args(false);
    sub->add_option("--env", cl.env, "set a variable in the jail")->type_name("KEY=VALUE")->allow_extra_args(false);
    sub->add_option("--env-pass", cl.env_pass, "pass the caller's value of KEY into the jail")
        ->type_name("KEY")
        ->allow_extra_args(false);
    sub->add_option("--cwd", cl.cwd, "working directory inside the jail")->type_name("DIR");
    sub->add_option("--set", cl.sets, "override any profile key, e.g. --set network.mode=none")
        ->type_name("KEY=VALUE")
        ->allow_extra_args(false);
}

void add_limit_flags(CLI::App* sub, CommandContext& ctx, bool with_type) {
    // The flags come from the limits table; the values live in ctx, one per
    // row, shared by every command that offers them (only one is parsed).
    if (ctx.limit_flags.empty())
        for (const auto& row : profile::limit_rows())
            if (row.flag) ctx.limit_flags.emplace_back(&row, std::string());
    for (auto& [row, value] : ctx.limit_flags) {
        std::string doc = row->doc;
        if (with_type) doc += std::string(", ") + profile::limit_type(*row);
        sub->add_option(row->flag, value, doc + " (limits." + row->key + ")")->group("Limits");
    }
}

void apply_limit_flags(CommandContext& ctx) {
    for (const auto& [row, value] : ctx.limit_flags)
        if (!value.empty()) ctx.cl.sets.push_back(std::string("limits.") + row->key + "=" + value);
}

void add_log_flags(CLI::App* sub, int& quiet, int& verbose) {
    sub->add_flag("-q,--quiet", quiet, "log warnings and errors only (stderr; journald levels under systemd)");
    sub->add_flag("-v,--verbose", verbose, "log debug lines too");
}

void apply_log_flags(int quiet, int verbose) {
    if (quiet) log::set_level(log::Level::Warning);
    if (verbose) log::set_level(log::Level::Debug);
}

}  // namespace stockade
