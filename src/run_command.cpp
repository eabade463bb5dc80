#include "run_command.hpp"

#include <iostream>
#include <memory>

#include "plan/fingerprint.hpp"
#include "plan/host.hpp"
#include "plan/plan.hpp"
#include "report/exit_status.hpp"
#include "report/learn.hpp"
#include "report/result.hpp"
#include "supervise/launch.hpp"
#include "supervise/notifier.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/safe_file.hpp"

namespace stockade {
namespace {

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
    // A descriptor of 2 or below was refused: the result never goes to stdio.
    if (ro.result_file.empty() && ro.result_fd < 3) return;
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
            report::write_result(
                ro.result_file, ro.result_fd,
                report::result_text(report::make_result(outcome, plan, policy, plan::fingerprint(plan))));
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

// The options run and exec share; pinned files are opened before the run.
std::shared_ptr<RunOptions> add_run_options(CLI::App* sub, CommandContext& ctx) {
    auto ro = std::make_shared<RunOptions>();
    add_profile_options(sub, ctx.cl);
    add_limit_flags(sub, ctx, true);
    sub->add_option("--result", ro->result, "write the JSON result to FILE when the run ends")->type_name("FILE");
    sub->add_option("--result-fd", ro->result_fd, "write the JSON result to this inherited fd")->type_name("N");
    sub->add_flag("-q,--quiet", ro->quiet, "no summary line on stderr");
    sub->add_flag("-v,--verbose", ro->verbose, "list every refused syscall, one per line");
    sub->add_flag("--timings", ro->timings, "print how long each setup step took (stderr)")->group("");
    sub->add_flag("--raw-terminal", ro->raw_terminal,
                  "pass every escape sequence to your terminal (by default clipboard, title, query and report "
                  "sequences are dropped)");
    sub->add_option("--learn", ro->learn,
                    "record every syscall the run uses (letting through all but the hard-deny core) and write "
                    "a profile that allows exactly those")
        ->type_name("FILE");
    return ro;
}

// The files named on the command line, pinned; and the program's arguments:
// what the parse left, then everything after "--".
std::vector<std::string> prepare(CLI::App* sub, RunOptions& ro, const CommandContext& ctx) {
    if (ro.result_fd >= 0 && ro.result_fd < 3) throw Error("--result-fd: expected a descriptor above 2");
    if (!ro.result.empty()) ro.result_file = HostFile(ro.result, true);
    if (!ro.learn.empty()) ro.learn_file = HostFile(ro.learn, false);
    std::vector<std::string> rest = sub->remaining();
    if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());
    rest.insert(rest.end(), ctx.after_dashes.begin(), ctx.after_dashes.end());
    return rest;
}

}  // namespace

Command add_run_command(CLI::App& app, CommandContext& ctx) {
    CLI::App* sub = app.add_subcommand("run", "run a Python script (or -c CODE) in the jail");
    auto ro = add_run_options(sub, ctx);
    auto code = std::make_shared<std::optional<std::string>>();
    sub->add_option_function<std::string>(
        "-c", [code](const std::string& c) { *code = c; }, "run CODE instead of a script file");
    sub->prefix_command();
    sub->footer("  stockade run [options] SCRIPT.py [ARGS...]\n  stockade run [options] -c CODE [ARGS...]");
    return {sub,
            [sub, ro, code, &ctx] {
                std::vector<std::string> rest = prepare(sub, *ro, ctx);
                plan::Invocation inv;
                inv.terminal_raw = ro->raw_terminal;
                if (*code) {
                    inv.mode = plan::Invocation::Mode::Code;
                    inv.code = **code;
                    inv.args = rest;
                } else if (rest.empty()) {
                    inv.mode = plan::Invocation::Mode::Repl;  // on a terminal, python's own REPL, on the jail's pty
                } else {
                    if (rest.front().size() > 1 && rest.front()[0] == '-' && ctx.after_dashes.empty())
                        throw Error("run: unknown option " + rest.front() + " (see stockade run --help)");
                    inv.mode = plan::Invocation::Mode::Script;
                    inv.script = rest.front();
                    inv.args.assign(rest.begin() + 1, rest.end());
                }
                return do_run(ctx.cl, inv, ctx.envp, *ro, ctx.t_main);
            },
            [ro](const std::string& message) { result_for_setup_error(*ro, message); }};
}

Command add_exec_command(CLI::App& app, CommandContext& ctx) {
    CLI::App* sub =
        app.add_subcommand("exec", "run any program the profile allows: stockade exec [options] -- ARGV...");
    auto ro = add_run_options(sub, ctx);
    sub->prefix_command();
    return {sub,
            [sub, ro, &ctx] {
                plan::Invocation inv;
                inv.terminal_raw = ro->raw_terminal;
                inv.mode = plan::Invocation::Mode::Exec;
                inv.args = prepare(sub, *ro, ctx);
                return do_run(ctx.cl, inv, ctx.envp, *ro, ctx.t_main);
            },
            [ro](const std::string& message) { result_for_setup_error(*ro, message); }};
}

}  // namespace stockade
