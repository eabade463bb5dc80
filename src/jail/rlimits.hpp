// Per-process limits set in the program before execve. They back up the cgroup
// limits, and stand in for them (as well as they can) where there is no cgroup.
#pragma once
#include <string>
#include <vector>

#include "profile/policy.hpp"

namespace stockade::jail {

struct Rlimit {
    int resource;
    unsigned long long soft, hard;
    const char* name;
};

// The rlimits for these limits. With `cgroup` false, memory and pids fall back
// to RLIMIT_AS and RLIMIT_NPROC (per user in the jail's user namespace, so the
// whole jail shares it).
std::vector<Rlimit> rlimits_for(const profile::Limits& l, bool cgroup);

// setrlimit each; throws Error naming the one that failed.
void apply(const std::vector<Rlimit>& rl);

// Without a cgroup, limits.cpu is held by CPU affinity: the jail is pinned to
// ceil(cpus) of the CPUs it may use, starting from the one it runs on (so
// jails spread), and the filter refuses sched_setaffinity. Inherited by every
// process of the jail. Throws Error.
void pin_cpus(double cpus);

}  // namespace stockade::jail
