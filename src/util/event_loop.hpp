// One poll() loop for everything a process watches, in the shape of sd-event:
// each fd watch, timer and hook is an object of its own, with its own
// callback, registered while it lives and gone with it. Nobody computes where
// their fds sit in a shared array, and nobody polls in a loop of their own:
// the Supervisor, serve's server, clients and warm jails, the terminal relay,
// the proxy and its resolver, and mcp all register here.
//
// A callback may destroy any watch, timer or hook, its own included, and
// create new ones: a watch destroyed during a round is not called after, and
// one created during a round waits for the next.
#pragma once
#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace stockade {

class EventLoop;

namespace loop_detail {
struct Watch;
struct TimerEntry;
struct HookEntry;
}  // namespace loop_detail

// An fd watched from construction to destruction. Events 0: kept, not polled;
// POLLHUP alone: polled for the hang-ups and errors poll always reports.
// Lower priorities are called first within a round; ties in order of creation.
class IoWatch {
public:
    using Callback = std::function<void(short revents)>;
    IoWatch() = default;
    IoWatch(EventLoop& loop, int fd, short events, Callback cb, int priority = 0);
    IoWatch(IoWatch&& o) noexcept;
    IoWatch& operator=(IoWatch&& o) noexcept;
    IoWatch(const IoWatch&) = delete;
    IoWatch& operator=(const IoWatch&) = delete;
    ~IoWatch() { reset(); }

    void set_events(short events);
    // Another fd for the same watch (a relay that waits on the reader, then the writer).
    void set(int fd, short events);
    int fd() const;
    short events() const;
    explicit operator bool() const { return static_cast<bool>(w_); }
    void reset();

private:
    std::shared_ptr<loop_detail::Watch> w_;
};

// A one-shot timer on CLOCK_MONOTONIC; the callback may arm it again.
class Timer {
public:
    using Callback = std::function<void()>;
    Timer() = default;
    Timer(EventLoop& loop, Callback cb);
    Timer(Timer&& o) noexcept;
    Timer& operator=(Timer&& o) noexcept;
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    ~Timer() { reset(); }

    void arm_at_ns(uint64_t monotonic_ns);
    void arm_in_ms(uint64_t ms);
    void disarm();
    bool armed() const;
    void reset();

private:
    std::shared_ptr<loop_detail::TimerEntry> t_;
};

// A callback run before every poll (Prepare: set this round's events from
// state that changes without an fd event, such as the terminal's foreground
// job) or after every round (Post: act on what the round's events changed).
class Hook {
public:
    enum class When { Prepare, Post };
    using Callback = std::function<void()>;
    Hook() = default;
    Hook(EventLoop& loop, When when, Callback cb);
    Hook(Hook&& o) noexcept;
    Hook& operator=(Hook&& o) noexcept;
    Hook(const Hook&) = delete;
    Hook& operator=(const Hook&) = delete;
    ~Hook() { reset(); }
    void reset();

private:
    std::shared_ptr<loop_detail::HookEntry> h_;
};

class EventLoop {
public:
    EventLoop() = default;
    // Watches, timers and hooks that outlive the loop are left inert.
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // The prepare hooks, one poll() (waiting at most max_wait_ms, -1: for
    // the first fd or timer), the ready watches' callbacks, the due timers',
    // then the post hooks. Throws Error when poll fails.
    void run_once(int max_wait_ms = -1);
    size_t watches() const { return watches_.size(); }

private:
    friend class IoWatch;
    friend class Timer;
    friend class Hook;
    void add(std::shared_ptr<loop_detail::Watch> w);
    void add(std::shared_ptr<loop_detail::TimerEntry> t);
    void add(std::shared_ptr<loop_detail::HookEntry> h);
    template <class T>
    static void drop(std::vector<std::shared_ptr<T>>& v, const T* e);

    std::vector<std::shared_ptr<loop_detail::Watch>> watches_;  // by (priority, creation)
    std::vector<std::shared_ptr<loop_detail::TimerEntry>> timers_;
    std::vector<std::shared_ptr<loop_detail::HookEntry>> prepare_, post_;
    std::vector<pollfd> fds_;
    std::vector<std::shared_ptr<loop_detail::Watch>> round_;
    uint64_t next_serial_ = 0;
};

}  // namespace stockade
