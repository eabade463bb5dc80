#include <doctest/doctest.h>

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "util/clock.hpp"
#include "util/event_loop.hpp"
#include "util/fd.hpp"

using stockade::EventLoop;
using stockade::Hook;
using stockade::IoWatch;
using stockade::monotonic_ns;
using stockade::Pipe;
using stockade::Timer;

namespace {
Pipe pipe_with(const char* text) {
    Pipe p = stockade::make_pipe("test pipe");
    if (*text) REQUIRE(::write(p.write.get(), text, 1) == 1);
    return p;
}
}  // namespace

TEST_CASE("event loop: a ready fd calls its own watch, and only while it lives") {
    EventLoop loop;
    Pipe a = pipe_with("x"), b = pipe_with("");
    int a_calls = 0, b_calls = 0;
    IoWatch wa(loop, a.read.get(), POLLIN, [&](short revents) {
        CHECK((revents & POLLIN));
        ++a_calls;
    });
    IoWatch wb(loop, b.read.get(), POLLIN, [&](short) { ++b_calls; });
    loop.run_once(0);
    CHECK(a_calls == 1);
    CHECK(b_calls == 0);
    wa.reset();
    loop.run_once(0);
    CHECK(a_calls == 1);
    CHECK(loop.watches() == 1);
    // Events 0: kept, not polled.
    wb.set_events(0);
    REQUIRE(::write(b.write.get(), "y", 1) == 1);
    loop.run_once(0);
    CHECK(b_calls == 0);
    wb.set_events(POLLIN);
    loop.run_once(0);
    CHECK(b_calls == 1);
}

TEST_CASE("event loop: a callback may destroy watches of the same round, its own included") {
    EventLoop loop;
    Pipe a = pipe_with("x"), b = pipe_with("x");
    int calls = 0;
    auto second = std::make_unique<IoWatch>();
    std::unique_ptr<IoWatch> first;
    first = std::make_unique<IoWatch>(loop, a.read.get(), POLLIN, [&](short) {
        ++calls;
        second.reset();  // ready in this round too: must not be called
        first.reset();   // itself, while running
    });
    *second = IoWatch(loop, b.read.get(), POLLIN, [&](short) { ++calls; });
    loop.run_once(0);
    CHECK(calls == 1);
    CHECK(loop.watches() == 0);
}

TEST_CASE("event loop: priorities order a round; ties keep the order of creation") {
    EventLoop loop;
    Pipe a = pipe_with("x"), b = pipe_with("x"), c = pipe_with("x");
    std::string order;
    IoWatch late(
        loop, a.read.get(), POLLIN, [&](short) { order += 'L'; }, 1);
    IoWatch one(loop, b.read.get(), POLLIN, [&](short) { order += '1'; });
    IoWatch two(loop, c.read.get(), POLLIN, [&](short) { order += '2'; });
    loop.run_once(0);
    CHECK(order == "12L");
}

TEST_CASE("event loop: a timer bounds the wait and fires once; a disarmed one never") {
    EventLoop loop;
    int fired = 0, never = 0;
    Timer t(loop, [&] { ++fired; });
    Timer off(loop, [&] { ++never; });
    off.arm_in_ms(5);
    off.disarm();
    const uint64_t t0 = monotonic_ns();
    t.arm_in_ms(20);
    loop.run_once();  // no fds: only the timer ends the wait
    const double ms = static_cast<double>(monotonic_ns() - t0) / 1e6;
    CHECK(fired == 1);
    CHECK(ms >= 19.0);
    CHECK(ms < 2000.0);
    CHECK_FALSE(t.armed());
    loop.run_once(0);
    CHECK(fired == 1);
    CHECK(never == 0);
}

TEST_CASE("event loop: prepare hooks run before the poll, post hooks after the callbacks") {
    EventLoop loop;
    Pipe a = pipe_with("x");
    std::string order;
    IoWatch w(loop, a.read.get(), 0, [&](short) { order += 'W'; });
    Hook pre(loop, Hook::When::Prepare, [&] {
        order += 'P';
        w.set_events(POLLIN);  // this round's events, set just in time
    });
    Hook post(loop, Hook::When::Post, [&] { order += 'A'; });
    loop.run_once(0);
    CHECK(order == "PWA");
}

TEST_CASE("event loop: what outlives the loop is inert") {
    IoWatch w;
    Timer t;
    {
        EventLoop loop;
        Pipe a = pipe_with("x");
        w = IoWatch(loop, a.read.get(), POLLIN, [](short) {});
        t = Timer(loop, [] {});
    }
    t.arm_in_ms(1);
    w.set_events(POLLOUT);
    w.reset();
    t.reset();
    CHECK_FALSE(w);
}
