#include <doctest/doctest.h>
#include <sys/resource.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "jail/sysctls.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "supervise/template_fork.hpp"

using namespace stockade;

namespace {

plan::Plan served_plan(std::vector<std::string> sets = {}) {
    profile::CommandLine cl;
    cl.sets = std::move(sets);
    plan::Invocation inv{plan::Invocation::Mode::Code, "", "print(1)", {"5", "task", ""}};
    inv.writable_work = true;
    return plan::make(profile::load(cl), inv, plan::HostFacts{});
}

}  // namespace

TEST_CASE("a template fork's request: every writable scratch mount of the task's own, and its limits") {
    const plan::Plan p = served_plan();
    auto r = nlohmann::json::parse(supervise::template_request(p, true, true));
    // What the task writes to is its own; the root and /dev (frozen read-only) stay shared.
    std::vector<std::string> scratch;
    for (const auto& t : r["tmpfs"]) scratch.push_back(t[0]);
    CHECK(scratch == std::vector<std::string>{"/tmp", "/work", "/home/sandbox", "/dev/shm"});
    for (const auto& t : r["tmpfs"]) CHECK(t[1].get<uint64_t>() > 0);
    CHECK(r["devpts"] == nlohmann::json::array({"/dev/pts"}));
    CHECK(r["proc"] == "/proc");
    CHECK(r["proc_pid"] == true);
    CHECK(r["hostname"] == p.hostname);
    CHECK(r["loopback"] == true);
    CHECK(r["cwd"] == "/work");
    CHECK(r["program"] == p.argv[0]);
    CHECK(r["exec_rules"] == nlohmann::json(p.exec_rules));
    CHECK(r["cpus"] == 0.0);
    // With a cgroup, memory and pids are the cgroup's: no RLIMIT_AS or NPROC.
    bool core = false, as = false;
    for (const auto& l : r["rlimits"]) {
        core |= l[0] == RLIMIT_CORE && l[1] == 0 && l[2] == 0;
        as |= l[0] == RLIMIT_AS;
    }
    CHECK(core);
    CHECK_FALSE(as);

    // Without a cgroup, rlimits stand in and the CPUs are pinned; without
    // Landlock (ABI 2), no exec rules.
    auto n = nlohmann::json::parse(supervise::template_request(p, false, false));
    bool nas = false, nproc = false;
    for (const auto& l : n["rlimits"]) {
        nas |= l[0] == RLIMIT_AS;
        nproc |= l[0] == RLIMIT_NPROC;
    }
    CHECK(nas);
    CHECK(nproc);
    CHECK(n["cpus"] == 1.0);
    CHECK(n["exec_rules"].is_null());
    // A limit lifted is -1 (RLIM_INFINITY) on the wire, never 2^64-1.
    auto u = nlohmann::json::parse(supervise::template_request(served_plan({"limits.stack=0"}), false, true));
    for (const auto& l : u["rlimits"]) CHECK(l[2].get<long long>() >= -1);
}

TEST_CASE("a template fork's own user namespace: no namespaces, and a share of the template jail's quotas") {
    CHECK(jail::quota_share(128) == 16);
    CHECK(jail::quota_share(7) == 1);  // never 0: a quota of 0 would refuse every inotify_init
    auto r = nlohmann::json::parse(supervise::template_request(served_plan(), true, true));
    std::map<std::string, long> got;
    for (const auto& kv : r["sysctls"]) got[kv[0].get<std::string>()] = kv[1].get<long>();
    for (const char* ns : {"user", "pid", "net", "ipc", "uts", "time", "mnt"})
        CHECK(got.at("max_" + std::string(ns) + "_namespaces") == 0);
    // cgroup's is zeroed by the runner once its init has made the one it needs.
    CHECK(got.count("max_cgroup_namespaces") == 0);
    // The template jail took an eighth of the host's; each fork an eighth of that.
    std::ifstream host("/proc/sys/fs/inotify/max_user_instances");
    long instances = 0;
    host >> instances;
    REQUIRE(instances > 0);
    CHECK(got.at("max_inotify_instances") == jail::quota_share(jail::quota_share(instances)));
    CHECK(got.count("max_inotify_watches") == 1);
}
