#include "mcp/command.hpp"

#include <algorithm>
#include <memory>

#include "mcp/mcp.hpp"
#include "serve/command.hpp"

namespace stockade::mcp {
namespace {

constexpr const char* kExamples = R"(Examples:
  stockade mcp                                  the default profile, loopback network, 2 warm jails
  stockade mcp -p strict --preload numpy        no network, numpy already imported in each jail
  stockade mcp --ro "$PWD/data:/data" --timeout 60s   the data read-only at /data; 60 s per call
  stockade mcp --allow-network none             the model may also ask for no network at all

In an MCP client's configuration (Claude Desktop, Claude Code's .mcp.json, Codex):
  {"mcpServers": {"stockade": {"command": "stockade", "args": ["mcp", "-p", "strict"]}}}

The tools: run_python, python_session_open, python_session_run, python_session_close.
Everything the model cannot change is set here, by the operator. See stockade-mcp(1).)";

}  // namespace

Command add_mcp_command(CLI::App& app, CommandContext& ctx) {
    struct State {
        serve::ServeOptions so;
        double idle_s = 600;
        int quiet = 0, verbose = 0;
        std::vector<std::string> networks;
    };
    auto st = std::make_shared<State>();
    CLI::App* sub = app.add_subcommand(
        "mcp", "a Model Context Protocol server on stdin/stdout (tools: run_python, python_session_*)");
    add_profile_options(sub, ctx.cl);
    serve::add_pool_options(sub, st->so, st->idle_s);
    sub->footer(kExamples);
    sub->add_option("--allow-network", st->networks,
                    "a network mode the model may ask for (default: only the profile's own)")
        ->type_name("MODE")
        ->allow_extra_args(false)
        ->check(CLI::IsMember({"none", "loopback", "proxy"}));
    add_log_flags(sub, st->quiet, st->verbose);
    add_limit_flags(sub, ctx, false);
    return {sub, [st, &ctx] {
                apply_log_flags(st->quiet, st->verbose);
                const profile::CommandLine& cl = ctx.cl;
                McpOptions mo;
                auto& a = mo.serve_args;
                if (!cl.profile.empty()) a.insert(a.end(), {"-p", cl.profile});
                for (const auto& x : cl.ro) a.insert(a.end(), {"--ro", x});
                for (const auto& x : cl.rw) a.insert(a.end(), {"--rw", x});
                for (const auto& x : cl.env) a.insert(a.end(), {"--env", x});
                for (const auto& x : cl.env_pass) a.insert(a.end(), {"--env-pass", x});
                for (const auto& x : cl.sets) a.insert(a.end(), {"--set", x});
                if (!cl.cwd.empty()) a.insert(a.end(), {"--cwd", cl.cwd});
                const serve::ServeOptions& so = st->so;
                a.insert(a.end(), {"--pool", std::to_string(so.pool), "--max-jails", std::to_string(so.max_jails),
                                   "--max-sessions", std::to_string(so.max_sessions), "--idle-timeout",
                                   std::to_string(st->idle_s)});
                if (!so.preload.empty()) a.insert(a.end(), {"--preload", so.preload});
                if (st->quiet) a.push_back("-q");
                if (st->verbose) a.push_back("-v");
                // The profile's own mode first: the default when the model names none.
                profile::Policy p = profile::load(cl);
                mo.network_modes.push_back(profile::to_string(p.net));
                mo.wall_ms = p.limits.wall_ms;
                for (const auto& m : st->networks)
                    if (std::find(mo.network_modes.begin(), mo.network_modes.end(), m) == mo.network_modes.end())
                        mo.network_modes.push_back(m);
                return run(mo);
            }};
}

}  // namespace stockade::mcp
