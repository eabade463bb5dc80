#include "profile/limits.hpp"

#include <sys/resource.h>

#include <cmath>

namespace stockade::profile {
namespace {

constexpr double kWeekMs = 7.0 * 24 * 3600 * 1000;

std::string cpu_quota(double cores) { return std::to_string(static_cast<long>(cores * 100000)); }
std::string cpu_max(double cores) { return cpu_quota(cores) + " 100000"; }

std::vector<LimitRow> make_rows() {
    std::vector<LimitRow> rows;
    {
        LimitRow r{"wall_time", LimitKind::Duration, &Limits::wall_ms};
        r.min = 1, r.max = kWeekMs, r.def = "\"30s\"", r.doc = "wall-clock limit", r.flag = "--timeout";
        rows.push_back(r);  // the supervisor's clock
    }
    {
        LimitRow r{"grace", LimitKind::Duration, &Limits::grace_ms};
        r.min = 0, r.max = 3600 * 1000, r.def = "\"1s\"", r.doc = "from SIGTERM to SIGKILL at the wall clock";
        r.flag = nullptr, r.zero_lifts = false;
        rows.push_back(r);
    }
    {
        LimitRow r{"cpu_time", LimitKind::Duration, &Limits::cpu_ms};
        r.min = 1, r.max = kWeekMs, r.def = "\"30s\"", r.doc = "CPU time of the whole jail", r.flag = "--cpu-time";
        // The cgroup's total is read (cpu.stat); RLIMIT_CPU is the per-process
        // backstop in whole seconds, SIGKILL a second after SIGXCPU.
        r.cgroup = true;
        r.rlimit = RLIMIT_CPU, r.rlimit_name = "RLIMIT_CPU";
        r.to_rlimit = [](double ms, uint64_t& soft, uint64_t& hard) {
            soft = (static_cast<uint64_t>(ms) + 999) / 1000;
            hard = soft + 1;
        };
        r.degraded = [](double) { return std::string("RLIMIT_CPU per process stands in for the jail's total"); };
        rows.push_back(r);
    }
    {
        LimitRow r{"memory", LimitKind::Size, &Limits::memory};
        r.min = 4 << 20, r.max = 1ull << 50, r.def = "\"512M\"", r.doc = "memory limit", r.flag = "--memory";
        r.cgroup = true;
        // No swap, and an OOM ends the whole jail, where the kernel has them.
        r.v2 = {{"", "memory.max"},
                {"", "memory.swap.max", "0", nullptr, false},
                {"", "memory.oom.group", "1", nullptr, false}};
        r.v1 = {{"memory", "memory.limit_in_bytes"},
                {"memory", "memory.memsw.limit_in_bytes", nullptr, nullptr, false}};
        // Address space is a coarse stand-in: virtual, not resident.
        r.rlimit = RLIMIT_AS, r.rlimit_name = "RLIMIT_AS", r.rlimit_without_cgroup_only = true;
        r.degraded = [](double) { return std::string("RLIMIT_AS (address space, per process) stands in"); };
        rows.push_back(r);
    }
    {
        LimitRow r{"pids", LimitKind::Count, &Limits::pids};
        r.min = 1, r.max = 1 << 22, r.def = "128", r.doc = "processes and threads", r.flag = "--pids";
        r.cgroup = true;
        r.v2 = {{"", "pids.max"}};
        r.v1 = {{"pids", "pids.max"}};
        r.rlimit = RLIMIT_NPROC, r.rlimit_name = "RLIMIT_NPROC", r.rlimit_without_cgroup_only = true;
        r.degraded = [](double) {
            return std::string("RLIMIT_NPROC (the jail's user, in its own user namespace) stands in");
        };
        rows.push_back(r);
    }
    {
        LimitRow r{"cpu", LimitKind::Cores, nullptr, &Limits::cpus};
        r.min = 0.01, r.max = 1024, r.def = "1", r.doc = "share of CPU cores", r.flag = "--cpus";
        r.cgroup = true;
        r.v2 = {{"", "cpu.max", nullptr, cpu_max}};
        r.v1 = {{"cpu", "cpu.cfs_period_us", "100000", nullptr, false},
                {"cpu", "cpu.cfs_quota_us", nullptr, cpu_quota}};
        // Without a cgroup the jail is pinned to whole cores (jail/rlimits).
        r.degraded = [](double cores) {
            return "pinned to " + std::to_string(static_cast<int>(std::ceil(cores))) +
                   " CPU(s) by affinity (sched_setaffinity refused): whole cores, not a share";
        };
        rows.push_back(r);
    }
    {
        LimitRow r{"file_size", LimitKind::Size, &Limits::file_size};
        r.min = 4096, r.max = 1ull << 50, r.def = "\"128M\"", r.doc = "largest file the program may write";
        r.flag = nullptr, r.rlimit = RLIMIT_FSIZE, r.rlimit_name = "RLIMIT_FSIZE";
        rows.push_back(r);
    }
    {
        LimitRow r{"open_files", LimitKind::Count, &Limits::open_files};
        r.min = 16, r.max = 1 << 20, r.def = "1024", r.doc = "open file descriptors";
        r.flag = nullptr, r.rlimit = RLIMIT_NOFILE, r.rlimit_name = "RLIMIT_NOFILE";
        rows.push_back(r);
    }
    {
        LimitRow r{"stack", LimitKind::Size, &Limits::stack};
        r.min = 64 << 10, r.max = 1ull << 34, r.def = "\"8M\"", r.doc = "stack size";
        r.flag = nullptr, r.rlimit = RLIMIT_STACK, r.rlimit_name = "RLIMIT_STACK";
        rows.push_back(r);
    }
    {
        LimitRow r{"output", LimitKind::Size, &Limits::output};
        r.min = 1, r.max = 1ull << 50, r.def = "\"64M\"", r.doc = "stdout and stderr together";
        r.flag = "--output-limit";
        rows.push_back(r);  // the supervisor's relay
    }
    return rows;
}

const char* kind_type(LimitKind k) {
    switch (k) {
        case LimitKind::Duration:
            return "duration, 0 lifts it";
        case LimitKind::Size:
            return "size, 0 lifts it";
        case LimitKind::Count:
            return "integer, 0 lifts it";
        case LimitKind::Cores:
            return "number of cores, 0 lifts it";
    }
    return "";
}

}  // namespace

const char* limit_type(const LimitRow& row) { return row.zero_lifts ? kind_type(row.kind) : "duration, 0 is at once"; }

const std::vector<LimitRow>& limit_rows() {
    static const std::vector<LimitRow> rows = make_rows();
    return rows;
}

const LimitRow* limit_row(const std::string& key) {
    for (const auto& r : limit_rows())
        if (key == r.key) return &r;
    return nullptr;
}

double limit_value(const Limits& l, const LimitRow& row) {
    return row.f64 ? l.*row.f64 : static_cast<double>(l.*row.u64);
}

void set_limit(Limits& l, const LimitRow& row, double v) {
    if (row.f64)
        l.*row.f64 = v;
    else
        l.*row.u64 = static_cast<uint64_t>(v);
}

bool needs_cgroup(const Limits& l) {
    for (const auto& r : limit_rows())
        if (r.cgroup && limit_value(l, r) > 0) return true;
    return false;
}

}  // namespace stockade::profile
