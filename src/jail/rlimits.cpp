#include "jail/rlimits.hpp"

#include <sched.h>

#include <cmath>
#include <vector>

#include <sys/resource.h>

#include "profile/limits.hpp"
#include "util/error.hpp"

namespace stockade::jail {

std::vector<Rlimit> rlimits_for(const profile::Limits& l, bool cgroup) {
    std::vector<Rlimit> out;
    out.push_back({RLIMIT_CORE, 0, 0, "RLIMIT_CORE"});  // no core dumps of untrusted memory, ever
    for (const auto& row : profile::limit_rows()) {
        const double v = profile::limit_value(l, row);
        if (row.rlimit < 0 || v <= 0 || (cgroup && row.rlimit_without_cgroup_only)) continue;
        uint64_t soft = static_cast<uint64_t>(v), hard = soft;
        if (row.to_rlimit) row.to_rlimit(v, soft, hard);
        out.push_back({row.rlimit, soft, hard, row.rlimit_name});
    }
    return out;
}

void apply(const std::vector<Rlimit>& rl) {
    for (const auto& r : rl) {
        struct rlimit v {
            static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)
        };
        struct rlimit cur;
        // Never raise a hard limit the caller already lowered; clamp to it.
        if (::getrlimit(r.resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
            if (v.rlim_max > cur.rlim_max) v.rlim_max = cur.rlim_max;
            if (v.rlim_cur > v.rlim_max) v.rlim_cur = v.rlim_max;
        }
        if (::setrlimit(r.resource, &v) < 0) throw_sys("setrlimit", r.name);
    }
}

void pin_cpus(double cpus) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    check(::sched_getaffinity(0, sizeof allowed, &allowed), "sched_getaffinity");
    const int want = static_cast<int>(std::ceil(cpus));
    std::vector<int> ids;
    for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &allowed)) ids.push_back(i);
    if (ids.empty() || want >= static_cast<int>(ids.size())) return;  // no narrower than what it has
    int here = ::sched_getcpu();
    size_t start = 0;
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] == here) start = i;
    cpu_set_t pin;
    CPU_ZERO(&pin);
    for (int k = 0; k < want; ++k) CPU_SET(ids[(start + static_cast<size_t>(k)) % ids.size()], &pin);
    check(::sched_setaffinity(0, sizeof pin, &pin), "sched_setaffinity", "limits.cpu without a cgroup");
}

}  // namespace stockade::jail
