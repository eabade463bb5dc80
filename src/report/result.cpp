#include "report/result.hpp"

#include <signal.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "plan/fingerprint.hpp"
#include "report/exit_status.hpp"
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

std::optional<Status> status_from_string(std::string_view s) {
    for (Status x : kStatuses)
        if (s == to_string(x)) return x;
    return std::nullopt;
}

std::string status_names() {
    std::string out;
    for (Status x : kStatuses) out += (out.empty() ? "" : ", ") + std::string(to_string(x));
    return out;
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

Result make_result(const supervise::Outcome& o, const plan::Plan& plan, const profile::Policy& policy,
                   const std::string& plan_hash) {
    Result r;
    r.status = classify(o, plan);
    r.ran = true;
    if (o.kind == Kind::SetupError)
        r.exit_code = kExitStockadeFailed;
    else if (o.kind != Kind::Signaled)
        r.exit_code = o.exit_code;
    if (o.kind == Kind::Signaled) r.signal = o.signal;
    r.killed_by_stockade = o.timed_out_wall || o.timed_out_cpu || o.output_killed || o.seccomp_killed;
    r.message = o.message;
    r.wall_ms = o.wall_ms;
    if (o.setup_ms >= 0) r.setup_ms = o.setup_ms;
    r.cpu_user_ms = o.cpu_user_ms;
    r.cpu_sys_ms = o.cpu_sys_ms;
    // From the cgroup where it says; otherwise the largest single process.
    r.memory_peak_bytes = o.memory_peak >= 0 ? static_cast<uint64_t>(o.memory_peak) : o.max_rss_bytes;
    if (o.pids_peak >= 0) r.pids_peak = o.pids_peak;
    if (o.oom_kills >= 0) r.oom_kills = o.oom_kills;
    if (o.stdout_bytes >= 0) r.stdout_bytes = o.stdout_bytes;
    if (o.stderr_bytes >= 0) r.stderr_bytes = o.stderr_bytes;
    r.truncated = o.truncated;
    r.violations = o.violations;
    r.degraded = o.degraded;
    r.cgroup = o.cgroup;
    r.network = o.network;
    r.network_dropped = o.network_dropped;
    r.profile_name = policy.name;
    r.profile_hash = plan_hash;
    r.supervisor_cpu_ms = o.supervisor_cpu_ms;
    r.supervisor_max_rss_bytes = o.supervisor_max_rss_bytes;
    return r;
}

Result setup_error_result(const std::string& message) {
    Result r;
    r.status = Status::SetupError;
    r.exit_code = kExitStockadeFailed;
    r.message = message;
    return r;
}

json to_json(const Result& r) {
    auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
    json j;
    j["schema_version"] = 1;
    j["status"] = to_string(r.status);
    j["exit_code"] = opt(r.exit_code);
    j["signal"] = opt(r.signal);
    j["killed_by_stockade"] = r.killed_by_stockade;
    j["message"] = r.message.empty() ? json(nullptr) : json(r.message);
    if (!r.ran) return j;
    j["wall_ms"] = ms(r.wall_ms);
    j["setup_ms"] = r.setup_ms ? ms(*r.setup_ms) : json(nullptr);
    j["cpu_user_ms"] = ms(r.cpu_user_ms);
    j["cpu_sys_ms"] = ms(r.cpu_sys_ms);
    j["memory_peak_bytes"] = r.memory_peak_bytes;
    j["pids_peak"] = opt(r.pids_peak);
    j["oom_kills"] = opt(r.oom_kills);
    j["stdout_bytes"] = opt(r.stdout_bytes);
    j["stderr_bytes"] = opt(r.stderr_bytes);
    j["truncated"] = r.truncated;
    json v = json::array();
    for (const auto& x : r.violations) {
        v.push_back({{"syscall", x.name},
                     {"call", x.call},
                     {"errno", x.killed ? json(nullptr) : json(errno_name(x.err))},
                     {"core", x.core},
                     {"killed", x.killed},
                     {"count", x.count}});
    }
    j["violations"] = v;
    json d = json::array();
    for (const auto& [limit, why] : r.degraded) d.push_back({{"limit", limit}, {"reason", why}});
    j["degraded"] = d;
    j["cgroup"] = r.cgroup.empty() ? json(nullptr) : json(r.cgroup);
    json net = json::array();
    for (const auto& n : r.network)
        net.push_back({{"t_ms", ms(n.t_ms)},
                       {"method", n.method},
                       {"host", n.host},
                       {"port", n.port},
                       {"allowed", n.allowed},
                       {"reason", n.reason},
                       {"bytes_up", n.bytes_up},
                       {"bytes_down", n.bytes_down},
                       {"count", n.count}});
    j["network"] = net;
    j["profile"] = {{"name", r.profile_name}, {"hash", r.profile_hash}};
    j["network_dropped"] = r.network_dropped;
    j["supervisor"] = {{"cpu_ms", ms(r.supervisor_cpu_ms)}, {"max_rss_bytes", r.supervisor_max_rss_bytes}};
    return j;
}

std::string result_text(const Result& r) { return dump(to_json(r)); }

Result result_from_json(const json& j) {
    Result r;
    if (!j.is_object()) return r;
    auto str = [&](const json& o, const char* k) {
        auto it = o.find(k);
        return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto num = [&](const json& o, const char* k) -> std::optional<double> {
        auto it = o.find(k);
        if (it == o.end() || !it->is_number()) return std::nullopt;
        return it->get<double>();
    };
    auto integer = [&](const json& o, const char* k) -> std::optional<int64_t> {
        auto it = o.find(k);
        if (it == o.end() || !it->is_number_integer()) return std::nullopt;
        return it->get<int64_t>();
    };
    r.status = status_from_string(str(j, "status")).value_or(Status::SetupError);
    if (auto v = integer(j, "exit_code")) r.exit_code = static_cast<int>(*v);
    if (auto v = integer(j, "signal")) r.signal = static_cast<int>(*v);
    r.killed_by_stockade = j.value("killed_by_stockade", false) == true;
    r.message = str(j, "message");
    r.ran = j.contains("wall_ms");
    r.wall_ms = num(j, "wall_ms").value_or(0);
    r.setup_ms = num(j, "setup_ms");
    r.cpu_user_ms = num(j, "cpu_user_ms").value_or(0);
    r.cpu_sys_ms = num(j, "cpu_sys_ms").value_or(0);
    r.memory_peak_bytes = static_cast<uint64_t>(integer(j, "memory_peak_bytes").value_or(0));
    r.pids_peak = integer(j, "pids_peak");
    r.oom_kills = integer(j, "oom_kills");
    r.stdout_bytes = integer(j, "stdout_bytes");
    r.stderr_bytes = integer(j, "stderr_bytes");
    r.truncated = j.value("truncated", false) == true;
    if (auto v = j.find("violations"); v != j.end() && v->is_array())
        for (const auto& x : *v) {
            if (!x.is_object()) continue;
            seccomp::Violation w;
            w.name = str(x, "syscall");
            w.call = str(x, "call");
            w.killed = x.value("killed", false) == true;
            w.core = x.value("core", false) == true;
            w.count = static_cast<unsigned>(integer(x, "count").value_or(1));
            if (auto e = errno_by_name(str(x, "errno"))) w.err = *e;
            r.violations.push_back(std::move(w));
        }
    if (auto d = j.find("degraded"); d != j.end() && d->is_array())
        for (const auto& x : *d)
            if (x.is_object()) r.degraded.emplace_back(str(x, "limit"), str(x, "reason"));
    r.cgroup = str(j, "cgroup");
    if (auto n = j.find("network"); n != j.end() && n->is_array())
        for (const auto& x : *n) {
            if (!x.is_object()) continue;
            supervise::NetRecord rec;
            rec.t_ms = num(x, "t_ms").value_or(0);
            rec.method = str(x, "method");
            rec.host = str(x, "host");
            rec.port = static_cast<uint16_t>(integer(x, "port").value_or(0));
            rec.allowed = x.value("allowed", false) == true;
            rec.reason = str(x, "reason");
            rec.bytes_up = static_cast<uint64_t>(integer(x, "bytes_up").value_or(0));
            rec.bytes_down = static_cast<uint64_t>(integer(x, "bytes_down").value_or(0));
            rec.count = static_cast<uint64_t>(integer(x, "count").value_or(1));
            r.network.push_back(std::move(rec));
        }
    r.network_dropped = static_cast<uint64_t>(integer(j, "network_dropped").value_or(0));
    if (auto p = j.find("profile"); p != j.end() && p->is_object()) {
        r.profile_name = str(*p, "name");
        r.profile_hash = str(*p, "hash");
    }
    if (auto s = j.find("supervisor"); s != j.end() && s->is_object()) {
        r.supervisor_cpu_ms = num(*s, "cpu_ms").value_or(0);
        r.supervisor_max_rss_bytes = static_cast<uint64_t>(integer(*s, "max_rss_bytes").value_or(0));
    }
    return r;
}

void write_result(const HostFile& file, int fd, const std::string& text) {
    if (fd >= 0) {
        write_all(fd, text.data(), text.size(), "--result-fd");
        return;
    }
    file.write(text);
}

}  // namespace stockade::report
