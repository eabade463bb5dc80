#include "util/event_loop.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>

#include "util/clock.hpp"
#include "util/error.hpp"

namespace stockade {

namespace loop_detail {
// The loop holds these by shared_ptr, and so does a round in progress: an
// entry whose owner is destroyed mid-round outlives the callback it is in,
// and `loop` null says it is not to be called again.
struct Watch {
    EventLoop* loop = nullptr;
    int fd = -1;
    short events = 0;
    int priority = 0;
    uint64_t serial = 0;
    IoWatch::Callback cb;
};
struct TimerEntry {
    EventLoop* loop = nullptr;
    uint64_t deadline_ns = 0;  // 0: disarmed
    Timer::Callback cb;
};
struct HookEntry {
    EventLoop* loop = nullptr;
    Hook::When when = Hook::When::Prepare;
    Hook::Callback cb;
};
}  // namespace loop_detail

using loop_detail::HookEntry;
using loop_detail::TimerEntry;
using loop_detail::Watch;

// ---- IoWatch

IoWatch::IoWatch(EventLoop& loop, int fd, short events, Callback cb, int priority) : w_(std::make_shared<Watch>()) {
    w_->fd = fd;
    w_->events = events;
    w_->priority = priority;
    w_->cb = std::move(cb);
    loop.add(w_);
}

IoWatch::IoWatch(IoWatch&& o) noexcept : w_(std::move(o.w_)) {}

IoWatch& IoWatch::operator=(IoWatch&& o) noexcept {
    if (this != &o) {
        reset();
        w_ = std::move(o.w_);
    }
    return *this;
}

void IoWatch::set_events(short events) {
    if (w_) w_->events = events;
}

void IoWatch::set(int fd, short events) {
    if (!w_) return;
    w_->fd = fd;
    w_->events = fd >= 0 ? events : 0;
}

int IoWatch::fd() const { return w_ ? w_->fd : -1; }
short IoWatch::events() const { return w_ ? w_->events : 0; }

void IoWatch::reset() {
    if (!w_) return;
    if (EventLoop* l = w_->loop) EventLoop::drop(l->watches_, w_.get());
    w_->loop = nullptr;
    w_.reset();
}

// ---- Timer

Timer::Timer(EventLoop& loop, Callback cb) : t_(std::make_shared<TimerEntry>()) {
    t_->cb = std::move(cb);
    loop.add(t_);
}

Timer::Timer(Timer&& o) noexcept : t_(std::move(o.t_)) {}

Timer& Timer::operator=(Timer&& o) noexcept {
    if (this != &o) {
        reset();
        t_ = std::move(o.t_);
    }
    return *this;
}

void Timer::arm_at_ns(uint64_t t) {
    if (t_) t_->deadline_ns = t ? t : 1;
}

void Timer::arm_in_ms(uint64_t ms) { arm_at_ns(monotonic_ns() + ms * 1000000ull); }

void Timer::disarm() {
    if (t_) t_->deadline_ns = 0;
}

bool Timer::armed() const { return t_ && t_->deadline_ns; }

void Timer::reset() {
    if (!t_) return;
    if (EventLoop* l = t_->loop) EventLoop::drop(l->timers_, t_.get());
    t_->loop = nullptr;
    t_.reset();
}

// ---- Hook

Hook::Hook(EventLoop& loop, When when, Callback cb) : h_(std::make_shared<HookEntry>()) {
    h_->when = when;
    h_->cb = std::move(cb);
    loop.add(h_);
}

Hook::Hook(Hook&& o) noexcept : h_(std::move(o.h_)) {}

Hook& Hook::operator=(Hook&& o) noexcept {
    if (this != &o) {
        reset();
        h_ = std::move(o.h_);
    }
    return *this;
}

void Hook::reset() {
    if (!h_) return;
    if (EventLoop* l = h_->loop) EventLoop::drop(h_->when == When::Prepare ? l->prepare_ : l->post_, h_.get());
    h_->loop = nullptr;
    h_.reset();
}

// ---- EventLoop

template <class T>
void EventLoop::drop(std::vector<std::shared_ptr<T>>& v, const T* e) {
    auto it = std::find_if(v.begin(), v.end(), [e](const auto& p) { return p.get() == e; });
    if (it != v.end()) v.erase(it);
}

EventLoop::~EventLoop() {
    for (auto& w : watches_) w->loop = nullptr;
    for (auto& t : timers_) t->loop = nullptr;
    for (auto& h : prepare_) h->loop = nullptr;
    for (auto& h : post_) h->loop = nullptr;
}

void EventLoop::add(std::shared_ptr<Watch> w) {
    w->loop = this;
    w->serial = next_serial_++;
    // After every watch of the same or a lower priority.
    auto at = std::upper_bound(watches_.begin(), watches_.end(), w->priority,
                               [](int p, const std::shared_ptr<Watch>& x) { return p < x->priority; });
    watches_.insert(at, std::move(w));
}

void EventLoop::add(std::shared_ptr<TimerEntry> t) {
    t->loop = this;
    timers_.push_back(std::move(t));
}

void EventLoop::add(std::shared_ptr<HookEntry> h) {
    h->loop = this;
    (h->when == Hook::When::Prepare ? prepare_ : post_).push_back(std::move(h));
}

namespace {
template <class T>
void call_hooks(const std::vector<std::shared_ptr<T>>& hooks) {
    // A copy: a hook may add or remove hooks.
    const std::vector<std::shared_ptr<T>> round = hooks;
    for (const auto& h : round)
        if (h->loop) h->cb();
}
}  // namespace

void EventLoop::run_once(int max_wait_ms) {
    call_hooks(prepare_);

    // Locals, not members: a callback may run a nested round (serve's probe
    // waits on the loop from inside startup), and this round's entries must
    // stay as they were polled.
    std::vector<pollfd> fds;
    std::vector<std::shared_ptr<Watch>> round;
    fds.reserve(watches_.size());
    round.reserve(watches_.size());
    for (const auto& w : watches_) {
        if (!w->events || w->fd < 0) continue;
        fds.push_back({w->fd, w->events, 0});
        round.push_back(w);
    }

    int timeout = max_wait_ms;
    uint64_t next = 0;
    for (const auto& t : timers_)
        if (t->deadline_ns && (!next || t->deadline_ns < next)) next = t->deadline_ns;
    if (next) {
        const uint64_t now = monotonic_ns();
        const uint64_t ms = next <= now ? 0 : std::min<uint64_t>((next - now + 999999) / 1000000, INT_MAX);
        if (timeout < 0 || ms < static_cast<uint64_t>(timeout)) timeout = static_cast<int>(ms);
    }

    if (::poll(fds.data(), fds.size(), timeout) < 0) {
        if (errno != EINTR) throw_sys("poll");
        for (auto& p : fds) p.revents = 0;
    }

    for (size_t i = 0; i < fds.size(); ++i) {
        const std::shared_ptr<Watch>& w = round[i];
        // Gone, or moved to another fd, since the poll: not this result's.
        if (!fds[i].revents || !w->loop || w->fd != fds[i].fd) continue;
        w->cb(fds[i].revents);
    }

    if (next) {
        const uint64_t now = monotonic_ns();
        std::vector<std::shared_ptr<TimerEntry>> due;
        for (const auto& t : timers_)
            if (t->deadline_ns && t->deadline_ns <= now) due.push_back(t);
        for (const auto& t : due) {
            // Disarmed or moved by an earlier callback of this round: not due.
            if (!t->loop || !t->deadline_ns || t->deadline_ns > now) continue;
            t->deadline_ns = 0;
            t->cb();
        }
    }

    call_hooks(post_);
}

}  // namespace stockade
