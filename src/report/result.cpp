#include "report/result.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "plan/fingerprint.hpp"
#include "profile/units.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::report {

using Kind = supervise::Outcome::Kind;
using json = nlohmann::ordered_json;

const char* to_string(Status s) {
    switch (s) {
        case Status::Ok:
            return "ok";
        case Status::ExitNonzero:
            return "exit_nonzero";
        case Status::Signaled:
            return "signaled";
        case Status::TimeoutWall:
            return "timeout_wall";
        case Status::TimeoutCpu:
            return "timeout_cpu";
        case Status::Oom:
            return "oom";
        case Status::PidsLimit:
            return "pids_limit";
        case Status::OutputLimit:
            return "output_limit";
        case Status::SeccompViolation:
            return "seccomp_violation";
        case Status::SetupError:
            return "setup_error";
    }
    return "setup_error";
}

Status classify(const supervise::Outcome& o, const plan::Plan& plan) {
    if (o.kind == Kind::SetupError) return Status::SetupError;
    if (o.timed_out_wall) return Status::TimeoutWall;
    if (o.timed_out_cpu) return Status::TimeoutCpu;
    if (o.oom_kills > 0) return Status::Oom;
    if (o.output_killed) return Status::OutputLimit;
    if (o.seccomp_killed) return Status::SeccompViolation;
    if (o.kind == Kind::Signaled) {
        // RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one.
        const double cpu = o.cpu_user_ms + o.cpu_sys_ms;
        if (o.pids_refused > 0 && o.signal != SIGKILL) return Status::PidsLimit;
        if (plan.limits.cpu_ms &&
            (o.signal == SIGXCPU || (o.signal == SIGKILL && cpu + 50 >= static_cast<double>(plan.limits.cpu_ms))))
            return Status::TimeoutCpu;
        return Status::Signaled;
    }
    if (o.kind == Kind::ExecError) return Status::ExitNonzero;
    if (o.exit_code != 0 && o.pids_refused > 0) return Status::PidsLimit;
    return o.exit_code == 0 ? Status::Ok : Status::ExitNonzero;
}

namespace {

// Strings from the jail (a proxy request's host, say) may be any bytes: invalid
// UTF-8 becomes U+FFFD rather than an exception, so the result is always written.
std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n"; }

json ms(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

std::string result_json(const supervise::Outcome& o, const plan::Plan& plan, const profile::Policy& policy) {
    Status st = classify(o, plan);
    json j;
    j["schema_version"] = 1;
    j["status"] = to_string(st);
    int code = 0;
    if (o.kind == Kind::Exited || o.kind == Kind::ExecError) code = o.exit_code;
    j["exit_code"] = o.kind == Kind::Signaled ? json(nullptr) : json(o.kind == Kind::SetupError ? 125 : code);
    j["signal"] = o.kind == Kind::Signaled ? json(o.signal) : json(nullptr);
    j["killed_by_stockade"] = o.timed_out_wall || o.timed_out_cpu || o.output_killed || o.seccomp_killed;
    j["message"] = o.message.empty() ? json(nullptr) : json(o.message);
    j["wall_ms"] = ms(o.wall_ms);
    j["setup_ms"] = o.setup_ms < 0 ? json(nullptr) : ms(o.setup_ms);
    j["cpu_user_ms"] = ms(o.cpu_user_ms);
    j["cpu_sys_ms"] = ms(o.cpu_sys_ms);
    // From the cgroup where it says; otherwise the largest single process.
    j["memory_peak_bytes"] = o.memory_peak >= 0 ? static_cast<uint64_t>(o.memory_peak) : o.max_rss_bytes;
    j["pids_peak"] = o.pids_peak >= 0 ? json(o.pids_peak) : json(nullptr);
    j["oom_kills"] = o.oom_kills >= 0 ? json(o.oom_kills) : json(nullptr);
    j["stdout_bytes"] = o.stdout_bytes < 0 ? json(nullptr) : json(o.stdout_bytes);
    j["stderr_bytes"] = o.stderr_bytes < 0 ? json(nullptr) : json(o.stderr_bytes);
    j["truncated"] = o.truncated;
    json v = json::array();
    for (const auto& x : o.violations) {
        v.push_back({{"syscall", x.name},
                     {"call", x.call},
                     {"errno", x.killed ? json(nullptr) : json(errno_name(x.err))},
                     {"core", x.core},
                     {"killed", x.killed},
                     {"count", x.count}});
    }
    j["violations"] = v;
    json d = json::array();
    for (const auto& [limit, why] : o.degraded) d.push_back({{"limit", limit}, {"reason", why}});
    j["degraded"] = d;
    j["cgroup"] = o.cgroup.empty() ? json(nullptr) : json(o.cgroup);
    json net = json::array();
    for (const auto& r : o.network)
        net.push_back({{"t_ms", ms(r.t_ms)},
                       {"method", r.method},
                       {"host", r.host},
                       {"port", r.port},
                       {"allowed", r.allowed},
                       {"reason", r.reason},
                       {"bytes_up", r.bytes_up},
                       {"bytes_down", r.bytes_down},
                       {"count", r.count}});
    j["network"] = net;
    j["profile"] = {{"name", policy.name}, {"hash", plan::fingerprint(plan)}};
    j["network_dropped"] = o.network_dropped;
    j["supervisor"] = {{"cpu_ms", ms(o.supervisor_cpu_ms)}, {"max_rss_bytes", o.supervisor_max_rss_bytes}};
    return dump(j);
}

std::string setup_error_json(const std::string& message) {
    json j;
    j["schema_version"] = 1;
    j["status"] = "setup_error";
    j["exit_code"] = 125;
    j["signal"] = nullptr;
    j["killed_by_stockade"] = false;
    j["message"] = message;
    return dump(j);
}

void write_result(const HostFile& file, int fd, const std::string& text) {
    if (fd >= 0) {
        write_all(fd, text.data(), text.size(), "--result-fd");
        return;
    }
    file.write(text);
}

}  // namespace stockade::report
