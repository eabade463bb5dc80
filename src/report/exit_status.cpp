#include "report/exit_status.hpp"

#include <cstdio>
#include <csignal>
#include <cstring>

#include "profile/units.hpp"
#include "report/result.hpp"

namespace stockade::report {

using Kind = supervise::Outcome::Kind;

int exit_status(const supervise::Outcome& o, const plan::Plan& plan) {
    switch (classify(o, plan)) {
        case Status::TimeoutWall:
        case Status::TimeoutCpu:
            return kExitTimeout;
        case Status::OutputLimit:
        case Status::Oom:
            return 128 + SIGKILL;
        default:
            break;
    }
    switch (o.kind) {
        case Kind::Exited:
            return o.exit_code;
        case Kind::Signaled:
            return 128 + o.signal;
        case Kind::SetupError:
            return kExitStockadeFailed;
        case Kind::ExecError:
            return o.exit_code == kExitNotFound ? kExitNotFound : kExitCannotExecute;
    }
    return kExitStockadeFailed;
}

namespace {
std::string duration(uint64_t ms) {
    if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}
}  // namespace

std::string summary_line(const supervise::Outcome& o, const plan::Plan& plan) {
    const auto& l = plan.limits;
    switch (classify(o, plan)) {
        case Status::TimeoutWall:
            return "stockade: killed: wall-clock limit " + duration(l.wall_ms) +
                   " reached (raise it with --timeout, e.g. --timeout 10m)";
        case Status::TimeoutCpu:
            return "stockade: killed: CPU time limit " + duration(l.cpu_ms) +
                   " used up (raise it with --cpu-time, e.g. --cpu-time 5m)";
        case Status::OutputLimit:
            return "stockade: killed: output limit " + profile::format_size(l.output) +
                   " exceeded (raise it with --output-limit)";
        case Status::Oom:
            return "stockade: killed: memory limit " + profile::format_size(l.memory) + " exceeded" +
                   (o.memory_peak > 0
                        ? " (peak " + profile::format_size(static_cast<uint64_t>(o.memory_peak) >> 20 << 20) + ")"
                        : "") +
                   " (raise it with --memory)";
        case Status::PidsLimit:
            return "stockade: process limit " + std::to_string(l.pids) +
                   " reached: forks were refused (raise it with --pids)";
        default:
            break;
    }
    std::string line;
    switch (o.kind) {
        case Kind::Exited:
            break;
        case Kind::Signaled: {
            if (o.seccomp_killed) {
                line = "stockade: program killed: a refused syscall under seccomp.default_action = \"kill\"";
                break;
            }
            const char* name = sigabbrev_np(o.signal);
            line = "stockade: program killed by signal " + std::to_string(o.signal) +
                   (name ? std::string(" (SIG") + name + ")" : "");
            break;
        }
        case Kind::SetupError:
        case Kind::ExecError:
            return "stockade: " + o.message;
    }
    if (o.truncated) {
        if (!line.empty()) line += "\n";
        line += "stockade: output truncated at " + profile::format_size(l.output) + " (raise it with --output-limit)";
    }
    return line;
}

void print_timings(std::ostream& out, double before_launch_ms, const supervise::Outcome& o) {
    char line[160];
    std::snprintf(line, sizeof line, "stockade: timing %-40s %8.3f ms\n", "cli, profile, plan", before_launch_ms);
    out << line;
    double prev = 0;
    for (const auto& [name, t] : o.phases) {
        std::snprintf(line, sizeof line, "stockade: timing %-40s %8.3f ms  (at %.3f)\n", name.c_str(), t - prev, t);
        out << line;
        prev = t;
    }
    std::snprintf(line, sizeof line, "stockade: timing %-40s %8.3f ms\n", "setup (launch to program's execve)",
                  o.setup_ms);
    out << line;
}
}  // namespace stockade::report
