// The serve protocol's requests, checked: JSON lines from a client, each an
// object with an "id" and an "op". Anything malformed is a RequestError with
// one line that names the field and what was expected (see man/stockade-serve.1).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "profile/policy.hpp"

namespace stockade::serve {

// Returned files: at most this many bytes in all, and this many files.
constexpr size_t kReturnCap = 8u << 20;
constexpr size_t kMaxReturnFiles = 1000;

struct RequestError : std::runtime_error {
    RequestError(std::string code, const std::string& message) : std::runtime_error(message), code(std::move(code)) {}
    std::string code;  // bad_request, busy, no_such_session, ...
};

// A run or a session cell: what the runner needs, already checked.
struct Task {
    // The control line for the runner, encoded once: what the request waits
    // with, counted against the queue's bytes, and handed over as it is.
    std::string to_runner;
    uint64_t timeout_ms = 0;  // 0: the profile's wall_time
    // "limits": profile keys to lower, as --set would write them.
    std::vector<std::string> limit_sets;
};

// op "run" (cell = false) or "session.run" (cell = true). The request's
// contents (code, stdin, files) are moved out of req, not copied: a request
// near the cap is megabytes, and each copy of it is loop time others wait for.
Task parse_task(nlohmann::json& req, bool cell, const profile::Limits& profile_limits);

// The limits a request may set must each be at most the profile's: checked
// on the loaded result. Throws RequestError naming the first one that is not.
void check_lowered(const profile::Limits& base, const profile::Limits& asked);

// Field helpers, shared by the server's ops.
std::string string_field(const nlohmann::json& req, const char* key, bool required);

}  // namespace stockade::serve
