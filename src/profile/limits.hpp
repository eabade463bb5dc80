// The limits table: one row per numeric limit, naming everything about it in
// one place: its profile key and type, where a cgroup holds it (v2 and v1),
// what stands in without a cgroup (an rlimit, or affinity) and what the result
// then says. The schema, the cgroup, the jail's rlimits, the degraded list,
// serve's "only lower" check and the fingerprint all read these rows, so a
// new limit is one row here plus its test.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "profile/policy.hpp"

namespace stockade::profile {

enum class LimitKind { Duration, Size, Count, Cores };

// One file write in the jail's cgroup. The text is `fixed` when set, else the
// row's value through `format` (nullptr: the integer value).
struct CgroupWrite {
    const char* controller;  // v1: the hierarchy ("memory"); v2: unused
    const char* file;
    const char* fixed = nullptr;
    std::string (*format)(double value) = nullptr;
    bool must = true;  // false: written where the kernel has the file
};

struct LimitRow {
    const char* key;  // limits.<key>
    LimitKind kind;
    uint64_t Limits::*u64 = nullptr;  // the field (Cores: f64)
    double Limits::*f64 = nullptr;
    double min = 0, max = 0;  // the accepted range; 0 always lifts it
    const char* def;          // the default, as a profile writes it
    const char* doc;
    const char* flag;        // the run/exec flag that sets it, or nullptr
    bool zero_lifts = true;  // grace: 0 is "at once", the least, not "none"

    // Held by the jail's cgroup when there is one: these rows are why a
    // cgroup is made.
    bool cgroup = false;
    std::vector<CgroupWrite> v2, v1;
    // An rlimit: always (a per-process limit), or only as the stand-in when
    // there is no cgroup.
    int rlimit = -1;
    const char* rlimit_name = nullptr;
    bool rlimit_without_cgroup_only = false;
    void (*to_rlimit)(double value, uint64_t& soft, uint64_t& hard) = nullptr;  // nullptr: value, value
    // What the result's degraded list says when there is no cgroup.
    std::string (*degraded)(double value) = nullptr;
};

const std::vector<LimitRow>& limit_rows();
const LimitRow* limit_row(const std::string& key);
// Its type as the man page, explain and --help say it ("size, 0 lifts it").
const char* limit_type(const LimitRow& row);

double limit_value(const Limits& l, const LimitRow& row);
void set_limit(Limits& l, const LimitRow& row, double v);
// Whether any limit set in l is one a cgroup holds.
bool needs_cgroup(const Limits& l);

}  // namespace stockade::profile
