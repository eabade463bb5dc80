#include "report/exit_status.hpp"

#include <cstdio>
#include <cstring>

namespace stockade::report {

using Kind = sandbox::Outcome::Kind;

int exit_status(const sandbox::Outcome& o) {
    switch (o.kind) {
        case Kind::Exited: return o.exit_code;
        case Kind::Signaled: return 128 + o.signal;
        case Kind::SetupError: return kExitStockadeFailed;
        case Kind::ExecError: return o.exit_code == kExitNotFound ? kExitNotFound : kExitCannotExecute;
    }
    return kExitStockadeFailed;
}

std::string summary_line(const sandbox::Outcome& o) {
    switch (o.kind) {
        case Kind::Exited: return {};
        case Kind::Signaled: {
            if (o.seccomp_killed) return "stockade: program killed: a refused syscall under seccomp.default_action = \"kill\"";
            const char* name = sigabbrev_np(o.signal);
            return "stockade: program killed by signal " + std::to_string(o.signal) + (name ? std::string(" (SIG") + name + ")" : "");
        }
        case Kind::SetupError:
        case Kind::ExecError: return "stockade: " + o.message;
    }
    return {};
}

void print_timings(std::ostream& out, double before_launch_ms, const sandbox::Outcome& o) {
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
