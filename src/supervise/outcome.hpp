// How a run ended, as the supervisor saw it: plain data, for report/.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "seccomp/violation.hpp"
#include "supervise/net_record.hpp"

namespace stockade::supervise {

struct Outcome {
    enum class Kind { Exited, Signaled, SetupError, ExecError };
    Kind kind = Kind::SetupError;
    int exit_code = 0;  // Exited: the program's code; ExecError: kExitCannotExecute or kExitNotFound
    int signal = 0;     // Signaled
    int err = 0;        // errno behind a SetupError/ExecError, if any
    std::string message;
    double setup_ms = -1;  // clone to the program's execve
    double wall_ms = 0;    // clone to the jail's end
    // Setup steps and when each ended, in ms since launch() began (with Plan::timings).
    std::vector<std::pair<std::string, double>> phases;
    std::vector<seccomp::Violation> violations;  // refused syscalls, by call
    bool seccomp_killed = false;                 // default_action = "kill" ended a process
    std::set<std::string> learned;               // --learn: syscalls let through

    bool timed_out_wall = false;  // the wall clock ran out and stockade ended the jail
    bool timed_out_cpu = false;   // the cgroup's CPU total reached limits.cpu_time
    std::string cgroup;           // "v2", "v1", or "" (rlimits only)
    int64_t oom_kills = -1, pids_peak = -1, pids_refused = -1, memory_peak = -1;  // from the cgroup
    bool output_killed = false;                    // the output cap was crossed under output_action = "kill"
    bool truncated = false;                        // output beyond the cap was discarded
    int64_t stdout_bytes = -1, stderr_bytes = -1;  // -1: passed straight through, not counted
    double cpu_user_ms = 0, cpu_sys_ms = 0;        // the whole jail (the init and all it reaped)
    uint64_t max_rss_bytes = 0;                    // the largest single process
    std::vector<std::pair<std::string, std::string>> degraded;  // limit -> why it is weaker than asked
    std::vector<supervise::NetRecord> network;                  // the proxy's decisions
    uint64_t network_dropped = 0;                               // decisions past the record bound
    // stockade's own cost for this run (all its threads; the jail is not in it).
    double supervisor_cpu_ms = 0;
    uint64_t supervisor_max_rss_bytes = 0;
};

}  // namespace stockade::supervise
