// The jail's cgroup: created below the caller's own cgroup, holding the jail
// from its first instruction, read for the figures, and removed on every path.
// One interface; a cgroup v2 backend (the norm) and a v1 one (hybrid hosts).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "profile/policy.hpp"

namespace stockade::supervise {

struct CgroupStats {
    int64_t memory_peak = -1;  // bytes; -1 when the kernel does not say
    int64_t oom_kills = -1;
    int64_t pids_peak = -1;
    int64_t pids_refused = -1;  // forks refused at pids.max
    double cpu_ms = -1;
    double user_ms = -1, sys_ms = -1;  // the split, where the kernel gives it
};

class Cgroup {
public:
    virtual ~Cgroup() = default;
    virtual const char* version() const = 0;
    // v2: a directory fd for clone3's CLONE_INTO_CGROUP, so the jail is in the
    // cgroup from its first instruction. v1: -1, and attach() does it instead,
    // before the child is let go (and, in both, for a process forked by
    // serve's template).
    virtual int clone_into_fd() const { return -1; }
    virtual void attach(pid_t) {}
    virtual double cpu_ms() = 0;  // the whole jail's CPU time so far
    virtual CgroupStats stats() = 0;
    virtual void kill() = 0;  // every process in it
    // Its share of the CPU against its siblings when the CPU is contended, on
    // v2's cpu.weight scale (1 to 10000, 100 by default). Where the cpu
    // controller is not there, nothing changes.
    virtual void set_cpu_weight(unsigned weight) = 0;
};

// A cgroup with these limits below the caller's own, or nullptr with why_not
// saying why (and how to fix it). With sweep, also removes the stale cgroups
// of dead stockades.
std::unique_ptr<Cgroup> create_cgroup(const profile::Limits& l, std::string& why_not, bool sweep = true);

// Cgroups left by stockades that were killed (their pid is gone), below this
// process's own cgroups; removed (if empty) when remove is set.
std::vector<std::string> stale_cgroups(bool remove);

// What is weaker without a cgroup, limit by limit, for the result.
std::vector<std::pair<std::string, std::string>> degraded_without_cgroup(const profile::Limits& l,
                                                                         const std::string& why);

}  // namespace stockade::supervise
