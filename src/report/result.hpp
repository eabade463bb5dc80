// The verdict of a run: one typed Result, built once from the supervisor's
// Outcome, written as JSON (schema 1) by one writer, and read back by the
// same code where it crossed a socket (mcp reads serve's answers).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/plan.hpp"
#include "profile/policy.hpp"
#include "supervise/outcome.hpp"
#include "util/safe_file.hpp"

namespace stockade::report {

enum class Status {
    Ok,
    ExitNonzero,
    Signaled,
    TimeoutWall,
    TimeoutCpu,
    Oom,
    PidsLimit,
    OutputLimit,
    SeccompViolation,
    SetupError,
};
inline constexpr std::array kStatuses = {
    Status::Ok,  Status::ExitNonzero, Status::Signaled,    Status::TimeoutWall,      Status::TimeoutCpu,
    Status::Oom, Status::PidsLimit,   Status::OutputLimit, Status::SeccompViolation, Status::SetupError,
};
const char* to_string(Status s);
std::optional<Status> status_from_string(std::string_view s);
// "ok, exit_nonzero, ...": the list, for schemas and help.
std::string status_names();

Status classify(const supervise::Outcome& o, const plan::Plan& plan);

struct Result {
    Status status = Status::SetupError;
    std::optional<int> exit_code;  // none when a signal ended it
    std::optional<int> signal;
    bool killed_by_stockade = false;
    std::string message;  // "" when there is nothing to say
    // Set only for a run that got as far as a jail; a setup error before one
    // existed has the head fields alone.
    bool ran = false;
    double wall_ms = 0;
    std::optional<double> setup_ms;
    double cpu_user_ms = 0, cpu_sys_ms = 0;
    uint64_t memory_peak_bytes = 0;
    std::optional<int64_t> pids_peak, oom_kills, stdout_bytes, stderr_bytes;
    bool truncated = false;
    std::vector<seccomp::Violation> violations;
    std::vector<std::pair<std::string, std::string>> degraded;  // limit, reason
    std::string cgroup;                                         // "v2", "v1", "" (none)
    std::vector<supervise::NetRecord> network;
    uint64_t network_dropped = 0;
    std::string profile_name, profile_hash;
    double supervisor_cpu_ms = 0;
    uint64_t supervisor_max_rss_bytes = 0;
};

// plan_hash: plan::fingerprint(plan), which its caller computes once for
// every run of one plan (serve's runner and its bytecode are in its mounts:
// hashing them again for every task was a tenth of a warm task's answer).
Result make_result(const supervise::Outcome& o, const plan::Plan& plan, const profile::Policy& policy,
                   const std::string& plan_hash);
Result setup_error_result(const std::string& message);

// The document (see man/stockade.1, RESULT), and its text.
nlohmann::ordered_json to_json(const Result& r);
std::string result_text(const Result& r);
// A document from another stockade (serve's answer): the fields it has; a
// status that is missing or unknown reads as setup_error.
Result result_from_json(const nlohmann::ordered_json& j);

// Writes to the pinned file or an inherited fd (if fd >= 0); throws Error.
void write_result(const HostFile& file, int fd, const std::string& json);

}  // namespace stockade::report
