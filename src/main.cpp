// stockade: the command line. Each subcommand registers itself from its own
// room; this file only calls them, parses, and prints what fails.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <iterator>
#include <utility>

#include "subcommand.hpp"
#include "completions.hpp"
#include "doctor/command.hpp"
#include "mcp/command.hpp"
#include "report/command.hpp"
#include "run_command.hpp"
#include "serve/command.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/huge_malloc.hpp"
#include "util/proc_title.hpp"
#include "util/stdio.hpp"

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

// The inherited fds that stay: the caller's --result-fd, the fd that
// --result /dev/fd/N (or /proc/self/fd/N) names, and systemd's socket for
// `serve` (LISTEN_PID is ours).
std::vector<int> fds_to_keep(int argc, char** argv) {
    std::vector<int> keep;
    for (int i = 1; i + 1 < argc && std::strcmp(argv[i], "--") != 0; ++i) {
        if (std::strcmp(argv[i], "--result-fd") == 0) keep.push_back(std::atoi(argv[i + 1]));
        if (std::strcmp(argv[i], "--result") == 0)
            for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"})
                if (std::strncmp(argv[i + 1], prefix, std::strlen(prefix)) == 0)
                    keep.push_back(std::atoi(argv[i + 1] + std::strlen(prefix)));
    }
    if (const char* lp = std::getenv("LISTEN_PID"); lp && std::atoi(lp) == ::getpid()) keep.push_back(3);
    return keep;
}

}  // namespace

int main(int argc, char** argv, char** envp) {
    CommandContext ctx;
    ctx.t_main = monotonic_ns();
    // The servers live long and take requests of megabytes.
    const bool server = argc > 1 && (std::strcmp(argv[1], "serve") == 0 || std::strcmp(argv[1], "mcp") == 0);
    if (server) exec_with_huge_page_malloc(argv, envp);
    ctx.envp = envp;
    remember_process_block(argc, argv, envp);  // before envp's pointers change below
    if (server) forget_huge_page_malloc(envp);
    ensure_stdio_open();
    close_inherited_fds(fds_to_keep(argc, argv));

    CLI::App app{"stockade: a small, fast, setuid-free Linux jail for untrusted Python", "stockade"};
    app.set_version_flag("--version", std::string("stockade ") + STOCKADE_VERSION);
    app.require_subcommand(1);
    app.footer(kExamples);
    ctx.app = &app;
    // Only the subcommand named first on the command line is built: building
    // all of them (every option, validator and help string) was most of
    // stockade's own startup on a cold run. Help, errors and completions see them all.
    using Adder = Command (*)(CLI::App&, CommandContext&);
    static constexpr std::pair<const char*, Adder> kCommands[] = {
        {"run", add_run_command},
        {"exec", add_exec_command},
        {"serve", serve::add_serve_command},
        {"mcp", mcp::add_mcp_command},
        {"check", report::add_check_command},
        {"explain", report::add_explain_command},
        {"profiles", report::add_profiles_command},
        {"completions", add_completions_command},
        {"doctor", doctor::add_doctor_command},
    };
    const char* named = argc > 1 ? argv[1] : "";
    const bool one = std::any_of(std::begin(kCommands), std::end(kCommands), [&](const auto& c) {
        return std::strcmp(c.first, named) == 0 && std::strcmp(named, "completions") != 0;
    });
    std::vector<Command> commands;
    for (const auto& [name, add] : kCommands)
        if (!one || std::strcmp(name, named) == 0) commands.push_back(add(app, ctx));

    // Everything after the first "--" belongs to the program, untouched by option
    // parsing (CLI11 would otherwise try to read "-c" in `exec -- sh -c ...`).
    std::vector<std::string> args(argv + 1, argv + argc);
    if (auto dd = std::find(args.begin(), args.end(), "--"); dd != args.end()) {
        ctx.after_dashes.assign(dd + 1, args.end());
        args.erase(dd, args.end());
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes the vector form reversed
    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : kExitStockadeFailed;
    }

    const Command* chosen = nullptr;
    for (const auto& c : commands)
        if (c.sub->parsed()) chosen = &c;
    if (!chosen) return kExitStockadeFailed;  // require_subcommand(1) makes this unreachable
    auto failed = [&](const std::string& message) {
        if (chosen->on_error) chosen->on_error(message);
        return kExitStockadeFailed;
    };
    try {
        apply_limit_flags(ctx);
        return chosen->run();
    } catch (const profile::ProfileError& e) {
        failed(e.diagnostics.front().str());
        return report::print_profile_error(e, false);
    } catch (const Error& e) {
        std::cerr << "stockade: " << e.what() << "\n";
        return failed(e.what());
    } catch (const std::exception& e) {
        std::cerr << "stockade: internal error: " << e.what() << "\n";
        return failed(std::string("internal error: ") + e.what());
    } catch (...) {
        std::cerr << "stockade: internal error\n";
        return failed("internal error");
    }
}
