#include "report/exit_status.hpp"

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
            const char* name = sigabbrev_np(o.signal);
            return "stockade: program killed by signal " + std::to_string(o.signal) + (name ? std::string(" (SIG") + name + ")" : "");
        }
        case Kind::SetupError:
        case Kind::ExecError: return "stockade: " + o.message;
    }
    return {};
}

}  // namespace stockade::report
