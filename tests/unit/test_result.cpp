#include <doctest/doctest.h>

#include <string>

#include "report/result.hpp"
#include "util/exit_codes.hpp"

using namespace stockade;
using namespace stockade::report;

namespace {

Result sample() {
    Result r;
    r.status = Status::SeccompViolation;
    r.exit_code = 1;
    r.killed_by_stockade = true;
    r.message = "a message";
    r.ran = true;
    r.wall_ms = 12.5;
    r.setup_ms = 3.25;
    r.cpu_user_ms = 1;
    r.cpu_sys_ms = 2;
    r.memory_peak_bytes = 1 << 20;
    r.pids_peak = 4;
    r.oom_kills = 0;
    r.stdout_bytes = 10;
    r.truncated = true;
    seccomp::Violation v;
    v.name = "ptrace";
    v.call = "ptrace(PTRACE_ATTACH, 1)";
    v.err = EPERM;
    v.count = 2;
    r.violations.push_back(v);
    r.degraded.emplace_back("memory", "RLIMIT_AS stands in");
    r.cgroup = "v1";
    supervise::NetRecord n;
    n.method = "CONNECT";
    n.host = "example.org";
    n.port = 443;
    n.reason = "not in the allow list";
    r.network.push_back(n);
    r.network_dropped = 3;
    r.profile_name = "default";
    r.profile_hash = "abc";
    r.supervisor_cpu_ms = 0.5;
    r.supervisor_max_rss_bytes = 4096;
    return r;
}

}  // namespace

TEST_CASE("result: every status has one name, and reads back as itself") {
    std::string names = status_names();
    for (Status s : kStatuses) {
        CHECK(status_from_string(to_string(s)) == s);
        CHECK(names.find(to_string(s)) != std::string::npos);
    }
    CHECK_FALSE(status_from_string("bogus").has_value());
}

TEST_CASE("result: the document is written once and read back to the same document") {
    const Result r = sample();
    const auto j = to_json(r);
    CHECK(j["status"] == "seccomp_violation");
    CHECK(j["signal"].is_null());
    CHECK(j["stderr_bytes"].is_null());
    CHECK(j["violations"][0]["errno"] == "EPERM");
    CHECK(to_json(result_from_json(j)) == j);
}

TEST_CASE("result: a setup error before any jail has the head fields and exit 125") {
    const auto j = to_json(setup_error_result("bad profile"));
    CHECK(j["status"] == "setup_error");
    CHECK(j["exit_code"] == kExitStockadeFailed);
    CHECK(j["message"] == "bad profile");
    CHECK_FALSE(j.contains("wall_ms"));
    CHECK(to_json(result_from_json(j)) == j);
}

TEST_CASE("result: a foreign document with an unknown status is a setup error, not a success") {
    nlohmann::ordered_json j = {{"status", "fine"}, {"exit_code", 0}};
    CHECK(result_from_json(j).status == Status::SetupError);
    CHECK(result_from_json(nlohmann::ordered_json::array()).status == Status::SetupError);
}
