// stockade: the command line. This file only wires the pieces together:
// profile::load -> plan::make -> supervise::launch -> report.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <unistd.h>
#include <cstring>
#include <iostream>

#include "profile/loader.hpp"
#include "profile/schema.hpp"
#include "report/exit_status.hpp"
#include "report/explain.hpp"
#include "report/learn.hpp"
#include "report/result.hpp"
#include "plan/host.hpp"
#include "supervise/launch.hpp"
#include "serve/server.hpp"
#include "util/log.hpp"
#include "mcp/mcp.hpp"
#include "doctor/doctor.hpp"
#include "completions.hpp"
#include "plan/plan.hpp"
#include "jail_interface.hpp"
#include "supervise/notifier.hpp"
#include "util/error.hpp"
#include "util/proc_title.hpp"
#include "util/safe_file.hpp"
#include "util/stdio.hpp"
#include "util/clock.hpp"

#ifndef STOCKADE_VERSION
#define STOCKADE_VERSION "0.0.0"
#endif

using namespace stockade;

namespace {

constexpr const char* kExamples = R"(Examples:
  stockade run hello.py                     run a script under the default profile
  stockade run -c 'print(2 + 2)'            run a code string
  stockade run -p strict --ro "$PWD/data:/data" job.py   no network, ./data read-only at /data
  stockade run --rw "$PWD/out:/work/out" job.py   let the script write into ./out
  stockade exec -- /usr/bin/env              run any program the profile allows
  stockade explain -p strict                 show exactly what a profile allows
  stockade check my-profile.toml             validate a profile

Exit status: the program's own; 128+N if it died of signal N; 125 if stockade
failed; 126 if the program could not be executed; 127 if it was not found.)";

constexpr const char* kMcpExamples = R"(Examples:
  stockade mcp                                  the default profile, loopback network, 2 warm jails
  stockade mcp -p strict --preload numpy        no network, numpy already imported in each jail
  stockade mcp --ro "$PWD/data:/data" --timeout 60s   the data read-only at /data; 60 s per call
  stockade mcp --allow-network none             the model may also ask for no network at all

In an MCP client's configuration (Claude Desktop, Claude Code's .mcp.json, Codex):
  {"mcpServers": {"stockade": {"command": "stockade", "args": ["mcp", "-p", "strict"]}}}

The tools: run_python, python_session_open, python_session_run, python_session_close.
Everything the model cannot change is set here, by the operator. See stockade-mcp(1).)";

constexpr const char* kServeExamples = R"(Examples:
  stockade serve --preload numpy &              warm jails on $XDG_RUNTIME_DIR/stockade/serve.sock
  stockade serve --check                        healthy? prints its stats
  systemctl --user enable --now stockade-serve.socket   socket-activated, with a delegated cgroup
The protocol (JSON lines) is in stockade-serve(1).)";

void add_common(CLI::App* sub, profile::CommandLine& cl) {
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

// The warm pool's options, shared by serve and mcp (whose jails are a serve's).
void add_pool_options(CLI::App* sub, serve::ServeOptions& so, double& idle_s) {
    sub->add_option("--pool", so.pool, "warm jails kept ready (default 2)")->type_name("N");
    sub->add_option("--preload", so.preload, "modules each warm jail imports before its task")->type_name("MOD,...");
    sub->add_option("--max-jails", so.max_jails, "jails alive at once: warm, busy and sessions (default 8)")
        ->type_name("N");
    sub->add_option("--max-sessions", so.max_sessions, "sessions open at once (default 4)")->type_name("N");
    sub->add_option("--idle-timeout", idle_s, "close a session unused this long (seconds, default 600)")
        ->type_name("S");
}

int print_profile_error(const profile::ProfileError& e, bool all) {
    for (const auto& d : e.diagnostics) {
        std::cerr << "stockade: " << d.str() << "\n";
        if (!all) break;
    }
    return report::kExitStockadeFailed;
}

std::string plan_degraded_reason(const supervise::Outcome& o) {
    for (const auto& [limit, why] : o.degraded)
        if (limit == "cgroup") return why;
    return "none available";
}

struct RunOptions {
    bool timings = false, verbose = false, quiet = false, raw_terminal = false;
    std::string learn, result;
    int result_fd = -1;
    // Pinned before anything runs (see util/safe_file.hpp).
    HostFile result_file, learn_file;
};

// A caller relying on the result gets one on every path: stockade's own
// failures before or after the jail included.
void result_for_setup_error(const RunOptions& ro, const std::string& message) {
    if (ro.result_file.empty() && ro.result_fd < 0) return;
    try {
        report::write_result(ro.result_file, ro.result_fd, report::result_text(report::setup_error_result(message)));
    } catch (const std::exception& e) {
        std::cerr << "stockade: --result: " << e.what() << "\n";
    }
}

int do_run(const profile::CommandLine& cl, const plan::Invocation& inv, char** envp, const RunOptions& ro,
           uint64_t t_main) {
    const bool timings = ro.timings, verbose = ro.verbose;
    const std::string& learn = ro.learn;
    profile::Policy policy = profile::load(cl);
    plan::Invocation how = inv;
    how.timings = timings;
    how.learn = !learn.empty();
    const plan::Plan plan = plan::make(policy, how, plan::gather_host_facts(envp));
    plan::check_sources(plan);
    const double before_launch = (monotonic_ns() - t_main) / 1e6;
    supervise::Outcome outcome = supervise::launch(plan);
    if (!ro.result_file.empty() || ro.result_fd >= 0) {
        // The program has run: a result that cannot be written now (a full
        // disk) is said once, and the exit status stays the program's own.
        try {
            report::write_result(ro.result_file, ro.result_fd,
                                 report::result_text(report::make_result(outcome, plan, policy)));
        } catch (const Error& e) {
            std::cerr << "stockade: --result: " << e.what()
                      << " (no result written; the exit status is the program's)\n";
        }
    }
    if (!outcome.degraded.empty() && !ro.quiet && outcome.kind != supervise::Outcome::Kind::SetupError) {
        std::string names;
        bool no_cgroup = false;
        for (const auto& [limit, why] : outcome.degraded) {
            if (limit == "cgroup")
                no_cgroup = true;
            else if (limit == "exec_allow")
                std::cerr << "stockade: warning: " << limit << ": " << why << "\n";
            else if (limit == "memfd_noexec")
                continue;  // in the result only: a fact of older kernels, not a limit the caller set
            else
                names += (names.empty() ? "" : ", ") + limit;
        }
        if (no_cgroup)
            std::cerr << "stockade: warning: limits without a cgroup (" << plan_degraded_reason(outcome) << "); "
                      << names << " held by rlimits only\n";
    }
    std::string line = report::summary_line(outcome, plan);
    if (!line.empty() && !ro.quiet) std::cerr << line << "\n";
    if (std::string v = supervise::summarize(outcome.violations); !v.empty() && !ro.quiet)
        std::cerr << "stockade: " << v << "\n";
    if (verbose) {
        for (const auto& r : outcome.network)
            std::cerr << "stockade: proxy: " << r.method << " " << r.host << ":" << r.port << " "
                      << (r.allowed ? "allowed -> " : "REFUSED: ") << r.reason << " (up " << r.bytes_up << ", down "
                      << r.bytes_down << " bytes)\n";
        for (const auto& v : outcome.violations) {
            std::cerr << "stockade: refused " << v.call << " -> " << (v.killed ? "process killed" : errno_name(v.err))
                      << (v.core ? " [hard-deny core]" : "") << (v.count > 1 ? " x" + std::to_string(v.count) : "")
                      << "\n";
        }
    }
    if (timings) report::print_timings(std::cerr, before_launch, outcome);
    if (!learn.empty()) {
        std::string command;
        for (const auto& a : plan.argv) command += (command.empty() ? "" : " ") + a;
        report::write_learned_profile(ro.learn_file, cl.profile.empty() ? profile::kDefaultProfile : cl.profile,
                                      command, outcome.learned);
        std::cerr << "stockade: --learn: " << outcome.learned.size() << " syscalls used; wrote " << learn << "\n";
    }
    return report::exit_status(outcome, plan);
}

}  // namespace

int main(int argc, char** argv, char** envp) {
    const uint64_t t_main = monotonic_ns();
    remember_process_block(argc, argv, envp);
    ensure_stdio_open();
    // The inherited fds that stay: the caller's --result-fd, or the fd that
    // --result /dev/fd/N (or /proc/self/fd/N) names.
    std::vector<int> keep_fds;
    for (int i = 1; i + 1 < argc && std::strcmp(argv[i], "--") != 0; ++i) {
        if (std::strcmp(argv[i], "--result-fd") == 0) keep_fds.push_back(std::atoi(argv[i + 1]));
        if (std::strcmp(argv[i], "--result") == 0)
            for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"})
                if (std::strncmp(argv[i + 1], prefix, std::strlen(prefix)) == 0)
                    keep_fds.push_back(std::atoi(argv[i + 1] + std::strlen(prefix)));
    }
    // systemd's socket activation for `serve` (LISTEN_PID is ours): fd 3 stays.
    if (const char* lp = std::getenv("LISTEN_PID"); lp && std::atoi(lp) == ::getpid()) keep_fds.push_back(3);
    close_inherited_fds(keep_fds);

    CLI::App app{"stockade: a small, fast, setuid-free Linux jail for untrusted Python", "stockade"};
    app.set_version_flag("--version", std::string("stockade ") + STOCKADE_VERSION);
    app.require_subcommand(1);
    app.footer(kExamples);

    profile::CommandLine cl;
    std::string code;
    bool code_given = false;

    CLI::App* run = app.add_subcommand("run", "run a Python script (or -c CODE) in the jail");
    add_common(run, cl);
    run->add_option("-c", code, "run CODE instead of a script file")->each([&](const std::string&) {
        code_given = true;
    });
    run->prefix_command();
    run->footer("  stockade run [options] SCRIPT.py [ARGS...]\n  stockade run [options] -c CODE [ARGS...]");

    CLI::App* exec =
        app.add_subcommand("exec", "run any program the profile allows: stockade exec [options] -- ARGV...");
    add_common(exec, cl);
    exec->prefix_command();

    serve::ServeOptions so;
    bool serve_check = false;
    double idle_s = 600;
    CLI::App* serve_cmd = app.add_subcommand(
        "serve", "keep warm jails and run tasks for clients on a Unix socket (see stockade-serve(1))");
    add_common(serve_cmd, cl);
    serve_cmd
        ->add_option("--socket", so.socket,
                     "the socket (default: $XDG_RUNTIME_DIR/stockade/serve.sock, /run/stockade/serve.sock as root)")
        ->type_name("PATH");
    add_pool_options(serve_cmd, so, idle_s);
    serve_cmd->footer(kServeExamples);
    serve_cmd->add_option("--allow-uid", so.allow_uids, "also serve clients with this uid")
        ->type_name("UID")
        ->allow_extra_args(false);
    serve_cmd->add_option("--allow-gid", so.allow_gids, "also serve clients with this gid")
        ->type_name("GID")
        ->allow_extra_args(false);
    serve_cmd->add_flag("--check", serve_check, "say whether a server answers on the socket, and print its stats");

    std::vector<std::string> mcp_networks;
    CLI::App* mcp_cmd = app.add_subcommand(
        "mcp", "a Model Context Protocol server on stdin/stdout (tools: run_python, python_session_*)");
    add_common(mcp_cmd, cl);
    add_pool_options(mcp_cmd, so, idle_s);
    mcp_cmd->footer(kMcpExamples);
    mcp_cmd
        ->add_option("--allow-network", mcp_networks,
                     "a network mode the model may ask for (default: only the profile's own)")
        ->type_name("MODE")
        ->allow_extra_args(false)
        ->check(CLI::IsMember({"none", "loopback", "proxy"}));

    RunOptions ro;
    // The limit flags come from the schema's rows: each sets its key via --set.
    std::vector<std::pair<const profile::KeyDoc*, std::string>> limit_flags;
    for (const auto& k : profile::schema_keys())
        if (k.cli_flag) limit_flags.emplace_back(&k, std::string());
    int log_quiet = 0, log_verbose = 0;
    for (CLI::App* sub : {serve_cmd, mcp_cmd}) {
        sub->add_flag("-q,--quiet", log_quiet, "log warnings and errors only (stderr; journald levels under systemd)");
        sub->add_flag("-v,--verbose", log_verbose, "log debug lines too");
    }
    for (CLI::App* sub : {serve_cmd, mcp_cmd})
        for (auto& [key, value] : limit_flags)
            sub->add_option(key->cli_flag, value, std::string(key->doc) + " (" + key->section + "." + key->key + ")")
                ->group("Limits");
    for (CLI::App* sub : {run, exec}) {
        for (auto& [key, value] : limit_flags)
            sub->add_option(key->cli_flag, value,
                            std::string(key->doc) + ", " + key->type + " (" + key->section + "." + key->key + ")")
                ->group("Limits");
        sub->add_option("--result", ro.result, "write the JSON result to FILE when the run ends")->type_name("FILE");
        sub->add_option("--result-fd", ro.result_fd, "write the JSON result to this inherited fd")->type_name("N");
        sub->add_flag("-q,--quiet", ro.quiet, "no summary line on stderr");
        sub->add_flag("-v,--verbose", ro.verbose, "list every refused syscall, one per line");
        sub->add_flag("--timings", ro.timings, "print how long each setup step took (stderr)")->group("");
        sub->add_flag("--raw-terminal", ro.raw_terminal,
                      "pass every escape sequence to your terminal (by default clipboard, title, query and report "
                      "sequences are dropped)");
        sub->add_option("--learn", ro.learn,
                        "record every syscall the run uses (letting through all but the hard-deny core) and write "
                        "a profile that allows exactly those")
            ->type_name("FILE");
    }

    std::string check_path;
    CLI::App* check = app.add_subcommand("check", "validate a profile; prints every error");
    check->add_option("PROFILE", check_path, "built-in name or path to a .toml file")->required();
    check->add_option("--set", cl.sets, "also apply overrides")->type_name("KEY=VALUE")->allow_extra_args(false);

    CLI::App* explain = app.add_subcommand("explain", "print the effective, fully resolved policy");
    add_common(explain, cl);
    bool explain_keys = false;
    explain->add_flag("--keys", explain_keys, "list every profile key: type, default, what it does");

    CLI::App* profiles = app.add_subcommand("profiles", "list the built-in profiles");

    std::string shell;
    CLI::App* completions = app.add_subcommand("completions", "print a shell completion script (bash, zsh or fish)");
    completions->add_option("SHELL", shell, "bash, zsh or fish")
        ->required()
        ->check(CLI::IsMember({"bash", "zsh", "fish"}));

    doctor::Options dopt;
    CLI::App* doctor_cmd =
        app.add_subcommand("doctor", "check what stockade needs on this host, with the fix for each failure");
    add_common(doctor_cmd, cl);
    doctor_cmd->add_flag("--json", dopt.json, "the checks as JSON, for tools");
    doctor_cmd->add_flag("--clean", dopt.clean, "remove cgroups left by stockades that were killed");
    doctor_cmd->footer("Exit status: 0 the profile runs as intended; 1 it runs degraded; 2 it cannot run.");

    // Everything after the first "--" belongs to the program, untouched by option
    // parsing (CLI11 would otherwise try to read "-c" in `exec -- sh -c ...`).
    std::vector<std::string> args(argv + 1, argv + argc), after_dashes;
    if (auto dd = std::find(args.begin(), args.end(), "--"); dd != args.end()) {
        after_dashes.assign(dd + 1, args.end());
        args.erase(dd, args.end());
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes the vector form reversed

    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : report::kExitStockadeFailed;
    }

    try {
        if (*profiles) {
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
        }
        if (*check) {
            cl.profile = check_path;
            try {
                profile::Policy p = profile::load(cl);
                std::cout << p.name << ": ok\n";
                return 0;
            } catch (const profile::ProfileError& e) {
                return print_profile_error(e, true);
            }
        }

        for (const auto& [key, value] : limit_flags)
            if (!value.empty()) cl.sets.push_back(std::string(key->section) + "." + key->key + "=" + value);
        if (ro.result_fd >= 0 && ro.result_fd < 3) throw Error("--result-fd: expected a descriptor above 2");
        if (!ro.result.empty()) ro.result_file = HostFile(ro.result, true);
        if (!ro.learn.empty()) ro.learn_file = HostFile(ro.learn, false);
        plan::Invocation inv;
        inv.terminal_raw = ro.raw_terminal;
        std::vector<std::string> rest;
        if (*run) rest = run->remaining();
        if (*exec) rest = exec->remaining();
        if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());
        rest.insert(rest.end(), after_dashes.begin(), after_dashes.end());

        if (*explain && explain_keys) {
            report::explain_keys(std::cout);
            return 0;
        }
        if (log_quiet) log::set_level(log::Level::Warning);
        if (log_verbose) log::set_level(log::Level::Debug);
        if (*serve_cmd) {
            if (serve_check) return serve::check_server(so.socket);
            if (!(idle_s > 0)) throw Error("serve: --idle-timeout: expected seconds above 0");
            so.idle_timeout_ms = static_cast<uint64_t>(idle_s * 1000);
            return serve::serve(cl, so, envp);
        }
        if (*doctor_cmd) return doctor::run(cl, dopt);
        if (*completions) {
            write_completions(std::cout, app, shell);
            return 0;
        }
        if (*mcp_cmd) {
            // The operator's choices, passed to each private `stockade serve`.
            mcp::McpOptions mo;
            auto& a = mo.serve_args;
            if (!cl.profile.empty()) a.insert(a.end(), {"-p", cl.profile});
            for (const auto& x : cl.ro) a.insert(a.end(), {"--ro", x});
            for (const auto& x : cl.rw) a.insert(a.end(), {"--rw", x});
            for (const auto& x : cl.env) a.insert(a.end(), {"--env", x});
            for (const auto& x : cl.env_pass) a.insert(a.end(), {"--env-pass", x});
            for (const auto& x : cl.sets) a.insert(a.end(), {"--set", x});
            if (!cl.cwd.empty()) a.insert(a.end(), {"--cwd", cl.cwd});
            a.insert(a.end(),
                     {"--pool", std::to_string(so.pool), "--max-jails", std::to_string(so.max_jails), "--max-sessions",
                      std::to_string(so.max_sessions), "--idle-timeout", std::to_string(idle_s)});
            if (!so.preload.empty()) a.insert(a.end(), {"--preload", so.preload});
            if (log_quiet) a.push_back("-q");
            if (log_verbose) a.push_back("-v");
            // The profile's own mode first: the default when the model names none.
            profile::Policy p = profile::load(cl);
            mo.network_modes.push_back(profile::to_string(p.net));
            mo.wall_ms = p.limits.wall_ms;
            for (const auto& m : mcp_networks)
                if (std::find(mo.network_modes.begin(), mo.network_modes.end(), m) == mo.network_modes.end())
                    mo.network_modes.push_back(m);
            return mcp::run(mo);
        }
        if (*explain) {
            profile::Policy p = profile::load(cl);
            inv.mode = plan::Invocation::Mode::Code;
            inv.code = "CODE";  // stands for the script or code a run would be given
            plan::Plan plan = plan::make(p, inv, plan::gather_host_facts(envp));
            report::explain(std::cout, p, plan);
            return 0;
        }
        if (*run) {
            if (code_given) {
                inv.mode = plan::Invocation::Mode::Code;
                inv.code = code;
                inv.args = rest;
            } else {
                if (rest.empty()) {
                    // On a terminal, python's own REPL, on the jail's pty.
                    inv.mode = plan::Invocation::Mode::Repl;
                    return do_run(cl, inv, envp, ro, t_main);
                }
                if (rest.front().size() > 1 && rest.front()[0] == '-' && after_dashes.empty())
                    throw Error("run: unknown option " + rest.front() + " (see stockade run --help)");
                inv.mode = plan::Invocation::Mode::Script;
                inv.script = rest.front();
                inv.args.assign(rest.begin() + 1, rest.end());
            }
        } else {
            inv.mode = plan::Invocation::Mode::Exec;
            inv.args = rest;
        }
        return do_run(cl, inv, envp, ro, t_main);
    } catch (const profile::ProfileError& e) {
        result_for_setup_error(ro, e.diagnostics.front().str());
        return print_profile_error(e, false);
    } catch (const Error& e) {
        std::cerr << "stockade: " << e.what() << "\n";
        result_for_setup_error(ro, e.what());
        return report::kExitStockadeFailed;
    } catch (const std::exception& e) {
        std::cerr << "stockade: internal error: " << e.what() << "\n";
        result_for_setup_error(ro, std::string("internal error: ") + e.what());
        return report::kExitStockadeFailed;
    } catch (...) {
        std::cerr << "stockade: internal error\n";
        result_for_setup_error(ro, "internal error");
        return report::kExitStockadeFailed;
    }
}
