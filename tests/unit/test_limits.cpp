#include <doctest/doctest.h>

#include <sys/resource.h>

#include <string>

#include "jail/rlimits.hpp"
#include "profile/limits.hpp"
#include "profile/loader.hpp"
#include "profile/schema.hpp"
#include "serve/request.hpp"
#include "supervise/cgroup.hpp"

using namespace stockade;
using namespace stockade::profile;

namespace {

const jail::Rlimit* find(const std::vector<jail::Rlimit>& v, int res) {
    for (const auto& r : v)
        if (r.resource == res) return &r;
    return nullptr;
}

}  // namespace

TEST_CASE("limits table: every row is a schema key with its default, and a cgroup row says what stands in") {
    for (const auto& row : limit_rows()) {
        bool found = false;
        for (const auto& k : schema_keys())
            if (std::string(k.section) == "limits" && std::string(k.key) == row.key) {
                found = true;
                CHECK(std::string(k.def) == row.def);
            }
        CHECK_MESSAGE(found, row.key);
        if (row.cgroup) CHECK_MESSAGE(bool(row.degraded), row.key);
        if (!row.v2.empty()) CHECK_MESSAGE(row.cgroup, row.key);
    }
}

TEST_CASE("limits table: the jail's rlimits follow the rows, with or without a cgroup") {
    Policy p = load(CommandLine{});
    auto with = jail::rlimits_for(p.limits, true), without = jail::rlimits_for(p.limits, false);
    REQUIRE(find(with, RLIMIT_CPU));
    CHECK(find(with, RLIMIT_CPU)->soft == 30);
    CHECK(find(with, RLIMIT_CPU)->hard == 31);
    CHECK(find(with, RLIMIT_NOFILE)->soft == 1024);
    CHECK(find(with, RLIMIT_CORE)->hard == 0);
    CHECK(find(with, RLIMIT_AS) == nullptr);  // the cgroup holds memory
    REQUIRE(find(without, RLIMIT_AS));
    CHECK(find(without, RLIMIT_AS)->soft == 512ull << 20);
    CHECK(find(without, RLIMIT_NPROC)->soft == 128);
}

TEST_CASE("limits table: a cgroup is wanted for the rows a cgroup holds, and degraded names them") {
    Limits l;
    CHECK_FALSE(needs_cgroup(l));
    l.output = 1 << 20;
    l.open_files = 64;
    CHECK_FALSE(needs_cgroup(l));
    l.cpus = 0.5;
    CHECK(needs_cgroup(l));
    l.memory = 64 << 20;
    auto d = supervise::degraded_without_cgroup(l, "why");
    REQUIRE(d.size() == 3);
    CHECK(d[0].first == "cgroup");
    CHECK(d[1].first == "memory");
    CHECK(d[2].first == "cpu");
    CHECK(d[2].second.find("pinned to 1 CPU") != std::string::npos);
}

TEST_CASE("limits table: serve refuses a request that raises any row") {
    Policy p = load(CommandLine{});
    for (const auto& row : limit_rows()) {
        Limits asked = p.limits;
        set_limit(asked, row, limit_value(p.limits, row) * 2);
        CHECK_THROWS_AS(serve::check_lowered(p.limits, asked), serve::RequestError);
        if (row.zero_lifts) {
            set_limit(asked, row, 0);  // 0 would lift it
            CHECK_THROWS_AS(serve::check_lowered(p.limits, asked), serve::RequestError);
        }
        set_limit(asked, row, limit_value(p.limits, row) / 2);
        CHECK_NOTHROW(serve::check_lowered(p.limits, asked));
    }
}
