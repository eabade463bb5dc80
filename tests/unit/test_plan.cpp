#include <doctest/doctest.h>

#include <algorithm>

#include "profile/loader.hpp"
#include "plan/fingerprint.hpp"
#include "plan/plan.hpp"
#include "util/error.hpp"

using namespace stockade;
using plan::Invocation;
using plan::MountOp;

namespace {

profile::Policy policy(std::vector<std::string> sets = {}, std::vector<std::string> rw = {}) {
    profile::CommandLine cl;
    cl.sets = std::move(sets);
    cl.rw = std::move(rw);
    return profile::load(cl);
}

const MountOp* find(const plan::Plan& p, const std::string& dst) {
    for (const auto& m : p.mounts)
        if (m.dst == dst) return &m;
    return nullptr;
}

size_t index_of(const plan::Plan& p, const std::string& dst) {
    for (size_t i = 0; i < p.mounts.size(); ++i)
        if (p.mounts[i].dst == dst) return i;
    return SIZE_MAX;
}

}  // namespace

TEST_CASE("ids: the caller maps to the jail user; root maps to an unprivileged host user") {
    plan::HostFacts user;
    user.euid = 1234;
    user.egid = 1235;
    Invocation inv{Invocation::Mode::Code, "", "pass", {}};
    auto p = plan::make(policy(), inv, user);
    CHECK(p.uid == 1000);
    CHECK(p.host_uid == 1234);
    CHECK(p.host_gid == 1235);
    CHECK_FALSE(p.clear_host_groups);

    plan::HostFacts root;
    auto r = plan::make(policy(), inv, root);
    CHECK(r.host_uid == 65534);
    CHECK(r.host_gid == 65534);
    CHECK(r.clear_host_groups);
}

TEST_CASE("argv for scripts, code and exec") {
    plan::HostFacts h;
    auto s = plan::make(policy({"run.python_args=[\"-X\", \"utf8\"]"}),
                           Invocation{Invocation::Mode::Script, "/home/me/job.py", "", {"a", "b"}}, h);
    CHECK(s.argv == std::vector<std::string>{"/usr/bin/python3", "-X", "utf8", "/work/job.py", "a", "b"});
    CHECK(s.script_host == "/home/me/job.py");
    const MountOp* script = find(s, "/work/job.py");
    REQUIRE(script);
    CHECK(script->kind == MountOp::Kind::Script);
    CHECK(s.exec_allow.empty());

    auto c = plan::make(policy(), Invocation{Invocation::Mode::Code, "", "print(1)", {"x"}}, h);
    CHECK(c.argv == std::vector<std::string>{"/usr/bin/python3", "-c", "print(1)", "x"});
    CHECK(c.script_host.empty());

    // serve's runner: its source and bytecode as read-only files, its directory run.
    Invocation r{Invocation::Mode::Code, "", "print(1)", {"5"}};
    r.code_run = "/.r";
    r.code_file = "/.r/__main__.py";
    r.code_extras = {{"/.r/__pycache__/__main__.cpython-311.pyc", std::string("\xa7\r\r\n\0\1", 6)}};
    auto w = plan::make(policy(), r, h);
    CHECK(w.argv == std::vector<std::string>{"/usr/bin/python3", "/.r", "5"});
    const MountOp* src = find(w, "/.r/__main__.py");
    const MountOp* pyc = find(w, "/.r/__pycache__/__main__.cpython-311.pyc");
    REQUIRE(src);
    REQUIRE(pyc);
    CHECK((src->kind == MountOp::Kind::File && src->content == "print(1)" && src->mode == 0444));
    CHECK((pyc->kind == MountOp::Kind::File && pyc->content == r.code_extras[0].second && pyc->mode == 0444));

    auto e = plan::make(policy(), Invocation{Invocation::Mode::Exec, "", "", {"env", "-i"}}, h);
    CHECK(e.argv == std::vector<std::string>{"env", "-i"});
    CHECK_FALSE(e.exec_allow.empty());
    CHECK_THROWS_AS(plan::make(policy(), Invocation{Invocation::Mode::Exec, "", "", {}}, h), Error);
    CHECK_THROWS_AS(plan::make(policy({"run.exec_allow=[]"}), Invocation{Invocation::Mode::Exec, "", "", {"sh"}}, h),
                    Error);
}

TEST_CASE("mount order puts parents before children, whatever the flag order") {
    plan::HostFacts h;
    auto p = plan::make(policy({}, {"/srv/out:/home/sandbox/out"}), Invocation{Invocation::Mode::Code, "", "", {}}, h);
    CHECK(index_of(p, "/home/sandbox") < index_of(p, "/home/sandbox/out"));
    CHECK(index_of(p, "/dev") < index_of(p, "/dev/null"));
    CHECK(index_of(p, "/dev") < index_of(p, "/dev/shm"));
    CHECK(p.mounts.back().kind == MountOp::Kind::Proc);
    const MountOp* out = find(p, "/home/sandbox/out");
    REQUIRE(out);
    CHECK(out->writable);
    CHECK(out->noexec);  // writable binds are noexec under the default profile
    CHECK(out->origin == "--rw");
    CHECK_FALSE(find(p, "/usr")->writable);
    CHECK(find(p, "/tmp")->size == 128ull << 20);
    CHECK(find(p, "/dev/null")->kind == MountOp::Kind::Device);
    CHECK_FALSE(find(p, "/dev")->writable);  // frozen after it is populated
}

TEST_CASE("synthesized /etc files") {
    plan::HostFacts h;
    auto p = plan::make(policy({"user.name=alice", "user.uid=1500", "run.hostname=box"}),
                           Invocation{Invocation::Mode::Code, "", "", {}}, h);
    const MountOp* passwd = find(p, "/etc/passwd");
    REQUIRE(passwd);
    CHECK(passwd->content.find("alice:x:1500:1000:stockade sandbox:/home/sandbox:/bin/sh\n") != std::string::npos);
    CHECK(find(p, "/etc/hosts")->content.find("localhost box") != std::string::npos);
    CHECK(find(p, "/etc/hostname")->content == "box\n");
    // A profile that binds /etc itself gets the host's files, not synthesized ones on top.
    auto q = plan::make(policy({"filesystem.ro=[\"/usr\", \"/etc\"]"}), Invocation{Invocation::Mode::Code, "", "", {}}, h);
    CHECK_FALSE(find(q, "/etc/passwd"));
}

TEST_CASE("environment: defaults, profile, --env, then passed-through values") {
    plan::HostFacts h;
    h.env = {{"TERM", "xterm"}, {"SECRET", "s3cr3t"}, {"KEEP", "kept"}};
    profile::CommandLine cl;
    cl.env = {"A=1"};
    cl.env_pass = {"KEEP", "ABSENT"};
    auto pol = profile::load(cl);
    auto p = plan::make(pol, Invocation{Invocation::Mode::Code, "", "", {}}, h);
    auto has = [&](const std::string& kv) { return std::find(p.envp.begin(), p.envp.end(), kv) != p.envp.end(); };
    CHECK(has("HOME=/home/sandbox"));
    CHECK(has("USER=sandbox"));
    CHECK(has("A=1"));
    CHECK(has("KEEP=kept"));
    CHECK(has("TERM=xterm"));  // the python profile passes TERM
    CHECK(has("PATH=/usr/local/bin:/usr/bin:/bin"));
    for (const auto& e : p.envp) {
        CHECK(e.find("SECRET") == std::string::npos);
        CHECK(e.find("ABSENT") == std::string::npos);
    }
    CHECK(p.path_var == "/usr/local/bin:/usr/bin:/bin");
}

TEST_CASE("the caller's terminal never enters; the jail gets a devpts of its own") {
    plan::HostFacts h;
    auto p = plan::make(policy(), Invocation{Invocation::Mode::Code, "", "", {}}, h);
    REQUIRE(find(p, "/dev/pts"));
    CHECK(find(p, "/dev/pts")->kind == MountOp::Kind::Devpts);
    CHECK(find(p, "/dev/ptmx")->kind == MountOp::Kind::Symlink);
    CHECK(p.terminal == 0);
    h.stdio_ttys = 1u | 2u;
    auto q = plan::make(policy(), Invocation{Invocation::Mode::Code, "", "", {}}, h);
    CHECK(q.terminal == 3u);
    for (const auto& m : q.mounts) CHECK_FALSE((m.kind == MountOp::Kind::Device && m.src.rfind("/dev/pts/", 0) == 0));
}

TEST_CASE("the fingerprint covers everything that changes behaviour, and nothing else") {
    plan::HostFacts h;
    h.euid = 1000;
    auto fp = [&](std::vector<std::string> sets, std::string code = "pass") {
        return plan::fingerprint(plan::make(policy(std::move(sets)), Invocation{Invocation::Mode::Code, "", code, {}}, h));
    };
    const std::string base = fp({});
    CHECK(base.size() == 16);
    CHECK(fp({}, "print('other code')") == base);  // what ran is not the policy
    // Each of these was missed by the old hand-picked hash.
    for (const char* set : {"network.mode=\"proxy\"", "run.exec_allow=[\"/usr/bin/python3\"]", "limits.cpu=2",
                            "filesystem.noexec_writable=false", "limits.grace=\"5s\"", "limits.require_cgroup=true",
                            "user.gid=1001", "namespaces.time=true", "limits.output_action=\"kill\""}) {
        INFO(set);
        CHECK(fp({set}) != base);
    }
    CHECK(fp({"network.mode=\"proxy\"", "network.allow=[\"a.example:443\"]"}) !=
          fp({"network.mode=\"proxy\"", "network.allow=[\"b.example:443\"]"}));
}

TEST_CASE("the writable tmpfs mounts together fit the memory limit") {
    auto sum = [](const plan::Plan& p) {
        uint64_t t = 0;
        for (const auto& m : p.mounts)
            if (m.kind == MountOp::Kind::Tmpfs && m.writable) t += m.size;
        return t;
    };
    Invocation inv;
    inv.mode = Invocation::Mode::Code;
    inv.code = "1";
    inv.writable_work = true;  // serve's jails: /work is a fourth tmpfs
    plan::HostFacts host;
    // The default profile's sizes (128M + 128M + 64M + 128M) fit its 512M as they are.
    auto p = plan::make(policy(), inv, host);
    CHECK(sum(p) == (448ull << 20));
    CHECK(find(p, "/tmp")->size == (128ull << 20));
    // A lower memory limit scales them down together, each keeping its share.
    p = plan::make(policy({"limits.memory=64M"}), inv, host);
    CHECK(sum(p) <= (64ull << 20));
    CHECK(find(p, "/tmp")->size == find(p, "/work")->size);
    CHECK(find(p, "/dev/shm")->size * 2 <= find(p, "/tmp")->size + 4096);
    CHECK(find(p, "/dev/shm")->size >= (8ull << 20));
    // No memory limit: sizes as given.
    p = plan::make(policy({"limits.memory=0"}), inv, host);
    CHECK(sum(p) == (448ull << 20));
}

TEST_CASE("defaults: a profile without extends gets every schema default, the same jail as the built-in one") {
    plan::HostFacts h;
    h.euid = 1234;
    h.egid = 1235;
    const Invocation inv{Invocation::Mode::Code, "", "print(1)", {}};
    profile::Policy bare = profile::load_text("schema = 1\n", "bare.toml");
    CHECK(bare.limits.memory == 512ull << 20);
    CHECK(bare.limits.wall_ms == 30000);
    CHECK(bare.limits.pids == 128);
    CHECK(bare.seccomp.deny_errno == EPERM);
    CHECK_FALSE(bare.seccomp.allow.empty());
    CHECK(plan::fingerprint(plan::make(bare, inv, h)) == plan::fingerprint(plan::make(policy(), inv, h)));
    // A bare profile's own values still win over the defaults.
    profile::Policy own = profile::load_text("schema = 1\n[limits]\nmemory = \"64M\"\n", "own.toml");
    CHECK(own.limits.memory == 64ull << 20);
    CHECK(own.limits.pids == 128);
}
