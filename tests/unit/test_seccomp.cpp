#include <doctest/doctest.h>

#include <linux/sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "plan/seccomp_spec.hpp"
#include "profile/loader.hpp"
#include "seccomp/catalog.hpp"
#include "seccomp/filter.hpp"
#include "supervise/notifier.hpp"
#include "seccomp/spec.hpp"

using namespace stockade;
using namespace stockade::seccomp;

namespace {
Spec spec_of(std::vector<std::string> sets = {}) {
    profile::CommandLine cl;
    cl.sets = std::move(sets);
    return plan::seccomp_spec(profile::load(cl).seccomp);
}
bool allows(const Spec& s, const char* name) { return std::binary_search(s.allow.begin(), s.allow.end(), resolve(name)); }
}  // namespace

TEST_CASE("groups: every name is a real syscall here, none is in the unconditional core") {
    for (const auto& g : groups()) {
        for (const char* n : g.syscalls) {
            INFO(g.name << ": " << n);
            CHECK(resolve(n) >= 0);
            if (const CoreRule* c = find_core(n)) CHECK(core_is_conditional(c->syscall));
        }
    }
    const Group* py = find_group("@python");
    REQUIRE(py);
    auto has = [&](const char* n) { return std::any_of(py->syscalls.begin(), py->syscalls.end(), [&](auto* s) { return !std::strcmp(s, n); }); };
    CHECK(has("read"));
    CHECK(has("mmap"));
    CHECK(has("clone"));
    CHECK_FALSE(has("ptrace"));
    CHECK_FALSE(has("mount"));
    CHECK_FALSE(find_group("@nope"));
}

TEST_CASE("seccomp_spec: groups expand, deny beats allow, the core stays out unless lifted") {
    Spec s = spec_of();
    CHECK(allows(s, "read"));
    CHECK(allows(s, "ioctl"));  // allowed, with TIOCSTI carved out by the filter
    CHECK_FALSE(allows(s, "ptrace"));
    CHECK(std::is_sorted(s.allow.begin(), s.allow.end()));
    CHECK(s.default_errno == ENOSYS);
    CHECK(s.socket_families == std::vector<int>{AF_UNIX, AF_INET, AF_INET6});

    Spec d = spec_of({"seccomp.deny=[\"getpid\"]"});
    CHECK_FALSE(allows(d, "getpid"));
    CHECK(std::binary_search(d.deny.begin(), d.deny.end(), resolve("getpid")));

    Spec u = spec_of({"seccomp.allow=[\"@python\", \"ptrace\"]", "unsafe.allow_syscalls=[\"ptrace\"]"});
    CHECK(allows(u, "ptrace"));
}

TEST_CASE("the core cannot be allowed without [unsafe]") {
    profile::CommandLine cl;
    cl.sets = {"seccomp.allow=[\"@python\", \"bpf\"]"};
    try {
        profile::load(cl);
        FAIL("expected an error");
    } catch (const profile::ProfileError& e) {
        CHECK(e.diagnostics.front().message.find("hard-deny core") != std::string::npos);
        CHECK(e.diagnostics.front().message.find("[unsafe] allow_syscalls = [\"bpf\"]") != std::string::npos);
    }
    cl.sets = {"unsafe.allow_syscalls=[\"read\"]"};
    CHECK_THROWS_AS(profile::load(cl), profile::ProfileError);  // not a core syscall
    cl.sets = {"seccomp.socket_families=[\"netlink\"]"};
    CHECK_THROWS_AS(profile::load(cl), profile::ProfileError);
    cl.sets = {"seccomp.allow=[\"raed\"]"};
    try {
        profile::load(cl);
        FAIL("expected an error");
    } catch (const profile::ProfileError& e) {
        CHECK(e.diagnostics.front().message == "unknown syscall \"raed\"; did you mean \"read\"?");
    }
    cl.sets = {"seccomp.default_errno=\"EWHAT\""};
    CHECK_THROWS_AS(profile::load(cl), profile::ProfileError);
}

TEST_CASE("decide: the supervisor's answer to a refused call") {
    Spec s = spec_of();
    uint64_t none[6] = {};
    auto d = decide(s, resolve("ptrace"), none);
    CHECK(d.err == EPERM);
    CHECK(d.core);
    uint64_t netlink[6] = {AF_NETLINK, SOCK_RAW, 0};
    CHECK(decide(s, resolve("socket"), netlink).err == EAFNOSUPPORT);
    uint64_t netlink_hi[6] = {(1ull << 32) | AF_NETLINK, SOCK_RAW, 0};
    CHECK(decide(s, resolve("socket"), netlink_hi).core);
    uint64_t alg[6] = {AF_ALG, SOCK_SEQPACKET, 0};  // outside socket_families, not core
    CHECK(decide(s, resolve("socket"), alg).err == EAFNOSUPPORT);
    uint64_t tiocsti_hi[6] = {0, (1ull << 32) | TIOCSTI};
    CHECK(decide(s, resolve("ioctl"), tiocsti_hi).core);
    uint64_t newuser[6] = {CLONE_NEWUSER | SIGCHLD};
    CHECK(decide(s, resolve("clone"), newuser).err == EPERM);
    CHECK(decide(s, resolve("set_mempolicy"), none).err == ENOSYS);
    CHECK_FALSE(decide(s, resolve("set_mempolicy"), none).core);

    Spec k = spec_of({"seccomp.default_action=\"kill\""});
    CHECK(decide(k, resolve("set_mempolicy"), none).kill);
    CHECK(decide(k, resolve("ptrace"), none).kill);  // kill mode kills for the core too
    uint64_t init_pid[6] = {1, 0, 0, 0}, high_bits[6] = {0x100000001ull, 0, 0, 0};
    CHECK(decide(s, resolve("prlimit64"), init_pid).err == EPERM);  // the init's limits are out of reach
    CHECK(decide(s, resolve("prlimit64"), high_bits).core);         // an int pid: compared on the low 32 bits

    Spec l = s;
    l.learn = true;
    CHECK(decide(l, resolve("set_mempolicy"), none).err == -1);
    CHECK(decide(l, resolve("ptrace"), none).err == EPERM);  // learning never opens the core
}

TEST_CASE("filters compile, and the canonical key tracks every input") {
    Spec s = spec_of();
    Compiled c = compile(s);
    CHECK(c.insns.size() > 50);
    CHECK(c.insns.size() < 4096);
    // The build-time table, the binary's own (linked here too), holds each
    // built-in profile's filter, and it is the program compiled now.
    for (const char* name : {"python", "strict"}) {
        profile::CommandLine cl;
        cl.profile = name;
        const Spec b = plan::seccomp_spec_for(profile::load(cl));
        const Precompiled* hit = nullptr;
        for (const auto& pc : precompiled_filters())
            if (canonical(b) == pc.canonical) hit = &pc;
        REQUIRE_MESSAGE(hit != nullptr, name);
        const Compiled now = compile(b);
        REQUIRE(hit->count == now.insns.size());
        CHECK(std::memcmp(hit->insns, now.insns.data(), now.insns.size() * sizeof(sock_filter)) == 0);
        Compiled p = compile_or_precompiled(b);
        CHECK(p.insns.size() == now.insns.size());
    }
    Spec t = s;
    t.allow.pop_back();
    CHECK(canonical(t) != canonical(s));
    t = s;
    t.learn = true;
    CHECK(canonical(t) != canonical(s));
    Spec off = spec_of({"unsafe.disable_seccomp=true"});
    CHECK(compile_or_precompiled(off).insns.empty());
}

TEST_CASE("format_call decodes what matters") {
    uint64_t a[6] = {AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0};
    CHECK(supervise::format_call("socket", a) == "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, 0, ...)");
    uint64_t i[6] = {0, (1ull << 32) | TIOCSTI};
    CHECK(supervise::format_call("ioctl", i) == "ioctl(0, TIOCSTI (high bits set), ...)");
    uint64_t c[6] = {CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD};
    CHECK(supervise::format_call("clone", c) == "clone(CLONE_NEWUSER|CLONE_NEWNET|..., ...)");
}

TEST_CASE("a built-in profile's build-time Spec is the one worked out now, and only for its own inputs") {
    for (const auto& b : profile::builtins()) {
        profile::CommandLine cl;
        cl.profile = b.name;
        profile::Policy p = profile::load(cl);
        const Spec* ready = plan::precomputed_spec(p);
        REQUIRE_MESSAGE(ready != nullptr, b.name);
        CHECK_MESSAGE(*ready == plan::seccomp_spec_computed(p), b.name);
        // A change to what the Spec reads is worked out anew, never looked up stale.
        for (auto change : {+[](profile::Policy& q) { q.seccomp.allow.pop_back(); },
                            +[](profile::Policy& q) { q.seccomp.deny.push_back("uname"); },
                            +[](profile::Policy& q) { q.seccomp.unsafe_allow.push_back("ptrace"); },
                            +[](profile::Policy& q) { q.seccomp.default_errno = 13; },
                            +[](profile::Policy& q) {
                                q.net = q.net == profile::NetMode::None ? profile::NetMode::Loopback
                                                                        : profile::NetMode::None;
                            }}) {
            profile::Policy q = p;
            change(q);
            const Spec now = plan::seccomp_spec_for(q);
            CHECK(now == plan::seccomp_spec_computed(q));
            if (const Spec* other = plan::precomputed_spec(q)) CHECK(*other == now);  // another built-in's
        }
    }
}
