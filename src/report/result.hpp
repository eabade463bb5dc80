// The verdict of a run, for people (one line) and programs (JSON, schema 1).
#pragma once
#include <string>

#include "profile/policy.hpp"
#include "supervise/outcome.hpp"
#include "plan/plan.hpp"
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
const char* to_string(Status s);

Status classify(const supervise::Outcome& o, const plan::Plan& plan);

// The result document (see man/stockade.1, RESULT). setup_error_json covers
// errors before the jail existed, when there is no outcome to speak of.
std::string result_json(const supervise::Outcome& o, const plan::Plan& plan, const profile::Policy& policy);
std::string setup_error_json(const std::string& message);

// Writes to the pinned file or an inherited fd (if fd >= 0); throws Error.
void write_result(const HostFile& file, int fd, const std::string& json);

}  // namespace stockade::report
