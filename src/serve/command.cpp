#include "serve/command.hpp"

#include <memory>

#include "util/error.hpp"

namespace stockade::serve {
namespace {

constexpr const char* kExamples = R"(Examples:
  stockade serve --preload numpy &              warm jails on $XDG_RUNTIME_DIR/stockade/serve.sock
  stockade serve --check                        healthy? prints its stats
  systemctl --user enable --now stockade-serve.socket   socket-activated, with a delegated cgroup
The protocol (JSON lines) is in stockade-serve(1).)";

}  // namespace

void add_pool_options(CLI::App* sub, ServeOptions& so, double& idle_s) {
    sub->add_option("--pool", so.pool, "warm jails kept ready (default 2)")->type_name("N");
    sub->add_option("--preload", so.preload, "modules each warm jail imports before its task")->type_name("MOD,...");
    sub->add_option("--max-jails", so.max_jails, "jails alive at once: warm, busy and sessions (default 8)")
        ->type_name("N");
    sub->add_option("--max-sessions", so.max_sessions, "sessions open at once (default 4)")->type_name("N");
    sub->add_flag("--no-templates{false}", so.templates,
                  "start each pool jail as a new python, not as a fork of a template that imported the preloads");
    sub->add_option("--idle-timeout", idle_s, "close a session unused this long (seconds, default 600)")
        ->type_name("S");
}

Command add_serve_command(CLI::App& app, CommandContext& ctx) {
    struct State {
        ServeOptions so;
        bool check = false;
        double idle_s = 600;
        int quiet = 0, verbose = 0;
    };
    auto st = std::make_shared<State>();
    CLI::App* sub = app.add_subcommand(
        "serve", "keep warm jails and run tasks for clients on a Unix socket (see stockade-serve(1))");
    add_profile_options(sub, ctx.cl);
    sub->add_option("--socket", st->so.socket,
                    "the socket (default: $XDG_RUNTIME_DIR/stockade/serve.sock, /run/stockade/serve.sock as root)")
        ->type_name("PATH");
    add_pool_options(sub, st->so, st->idle_s);
    sub->footer(kExamples);
    sub->add_option("--allow-uid", st->so.allow_uids, "also serve clients with this uid")
        ->type_name("UID")
        ->allow_extra_args(false);
    sub->add_option("--allow-gid", st->so.allow_gids, "also serve clients with this gid")
        ->type_name("GID")
        ->allow_extra_args(false);
    sub->add_flag("--check", st->check, "say whether a server answers on the socket, and print its stats");
    add_log_flags(sub, st->quiet, st->verbose);
    add_limit_flags(sub, ctx, false);
    return {sub, [st, &ctx] {
                apply_log_flags(st->quiet, st->verbose);
                if (st->check) return check_server(st->so.socket);
                if (!(st->idle_s > 0)) throw Error("serve: --idle-timeout: expected seconds above 0");
                st->so.idle_timeout_ms = static_cast<uint64_t>(st->idle_s * 1000);
                return serve(ctx.cl, st->so, ctx.envp);
            }};
}

}  // namespace stockade::serve
