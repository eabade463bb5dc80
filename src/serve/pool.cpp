#include "serve/pool.hpp"

#include <algorithm>

#include "util/clock.hpp"
#include "util/error.hpp"

namespace stockade::serve {
namespace {

// A jail warming ahead of any task is work that may wait: when the CPU is
// contended, the jails that tasks wait for get ten times its share, so a
// refill slows a busy server's tasks less (its p99 under load). Once taken,
// a jail has the default share again.
constexpr unsigned kAheadCpuWeight = 10;
constexpr unsigned kTaskCpuWeight = 100;

}  // namespace

std::unique_ptr<WarmJail> Pool::take(bool warming) {
    for (auto it = jails_.begin(); it != jails_.end(); ++it) {
        const auto st = (*it)->state();
        if (st != WarmJail::State::Ready && !(warming && st == WarmJail::State::Warming)) continue;
        // One that died since the loop last looked is left to be counted
        // there: a task handed to it would end "signaled", with no output.
        if (st == WarmJail::State::Ready && !(*it)->ready_now()) continue;
        if (st == WarmJail::State::Ready) served_ready(**it);
        std::unique_ptr<WarmJail> j = std::move(*it);
        jails_.erase(it);
        j->supervisor().set_cpu_weight(kTaskCpuWeight);
        return j;
    }
    return nullptr;
}

// A jail that got ready ends a run of failures; so does a fork for its
// template's, and the template's pause starts over at 1 s.
void Pool::served_ready(const WarmJail& j) {
    consecutive_failures_ = 0;
    if (j.forked_from(template_.get())) template_failures_in_row_ = 0;
}

// A fork that never got ready, in the pool or taken from it, is its
// template's failure (not a newer one's): the pool starts its jails as
// before until a new template is ready. A fork that was ready and then
// ended (killed while idle) says nothing of its template.
void Pool::ended_unready(const WarmJail& j) {
    if (j.forked_from(template_.get()) && j.ended_unready())
        template_failed("a jail forked from the template ended before it was ready: " + j.warmup_error());
}

// Every jail enters the pool here, refilled or started elsewhere: warming ahead.
void Pool::adopt(std::unique_ptr<WarmJail> j) {
    j->supervisor().set_cpu_weight(kAheadCpuWeight);
    jails_.push_back(std::move(j));
}

bool Pool::drop_one() {
    if (jails_.empty() && template_) {
        retire_template();
        return true;
    }
    if (jails_.empty()) return false;
    auto it =
        std::find_if(jails_.begin(), jails_.end(), [](const auto& j) { return j->state() != WarmJail::State::Ready; });
    jails_.erase(it == jails_.end() ? jails_.end() - 1 : it);
    return true;
}

size_t Pool::ready() const {
    return static_cast<size_t>(std::count_if(jails_.begin(), jails_.end(),
                                             [](const auto& j) { return j->state() == WarmJail::State::Ready; }));
}

std::vector<pid_t> Pool::ready_pids() const {
    std::vector<pid_t> out;
    for (const auto& j : jails_)
        if (j->state() == WarmJail::State::Ready) out.push_back(j->pid());
    return out;
}

int Pool::retry_in_ms() const {
    const uint64_t now = monotonic_ns();
    auto until = [now](uint64_t t) { return now >= t ? 0 : static_cast<int>((t - now) / 1000000 + 1); };
    // A template to build again when its pause ends (the refill after that
    // wake-up builds it; a deadline already past wakes nothing).
    const int t =
        spec_->templ && target_ && !template_ && now < template_not_before_ns_ ? until(template_not_before_ns_) : -1;
    if (jails_.size() >= target_ || !not_before_ns_) return t;
    const int j = until(not_before_ns_);
    return t < 0 ? j : std::min(t, j);
}

pid_t Pool::template_pid() const { return ready_template() ? template_->pid() : -1; }

std::shared_ptr<WarmJail> Pool::ready_template() const {
    return template_ && template_->state() == WarmJail::State::Ready ? template_ : nullptr;
}

namespace {
// When the next try may start after `failures` in a row: `base_ms` doubling,
// up to `cap_ms`, so that a broken preload costs a few jails, not a loop.
uint64_t retry_at_ns(uint64_t failures, uint64_t base_ms, uint64_t cap_ms) {
    const uint64_t pause_ms =
        std::min<uint64_t>(cap_ms, base_ms << std::min<uint64_t>(failures ? failures - 1 : 0, 16));
    return monotonic_ns() + pause_ms * 1000000;
}
}  // namespace

// A template that failed waits 1 s doubling to 5 min before the next;
// meanwhile the pool starts its jails as before.
void Pool::template_failed(const std::string& why) {
    template_error_ = why;
    ++template_failures_;
    ++template_failures_in_row_;
    retire_template();
    template_not_before_ns_ = retry_at_ns(template_failures_in_row_, 1000, 300000);
}

// A jail that failed to start or get ready: 50 ms doubling to 10 s.
void Pool::jail_failed(const std::string& why) {
    ++failures_;
    last_error_ = why;
    ++consecutive_failures_;
    not_before_ns_ = retry_at_ns(consecutive_failures_, 50, 10000);
}

// Killed and collected once the last jail forked from it has ended.
void Pool::retire_template() {
    std::erase_if(retired_, [](const auto& w) { return w.expired(); });
    if (template_) retired_.push_back(template_);
    template_.reset();
}

size_t Pool::live() const {
    size_t n = jails_.size() + (template_ ? 1 : 0);
    for (const auto& w : retired_) n += !w.expired();
    return n;
}

void Pool::keep_template(size_t& room) {
    if (!spec_->templ || target_ == 0) return;
    if (template_ && template_->ended())
        return template_failed(template_->warmup_error().empty() ? "the template ended" : template_->warmup_error());
    if (template_ || room == 0 || monotonic_ns() < template_not_before_ns_) return;
    --room;
    auto t = std::make_shared<WarmJail>(spec_->templ, loop_);
    try {
        t->start();
    } catch (const Error& e) {
        return template_failed(e.what());
    }
    // The default share: when the pool runs dry under load, tasks wait on
    // its forks one after another, and a tenth of the CPU starved them.
    template_ = std::move(t);
}

void Pool::tick() {
    size_t none = 0;
    keep_template(none);  // a template that ended is let go
    for (auto it = jails_.begin(); it != jails_.end();) {
        if (!(*it)->ended()) {
            if ((*it)->state() == WarmJail::State::Ready) served_ready(**it);
            ++it;
            continue;
        }
        jail_failed((*it)->ended_unready() ? (*it)->warmup_error() : "a warm jail ended while idle");
        ended_unready(**it);
        (*it)->collect();
        it = jails_.erase(it);
    }
}

void Pool::refill(size_t room) {
    if (not_before_ns_ && monotonic_ns() < not_before_ns_) return;
    keep_template(room);
    while (jails_.size() < target_ && room > 0) {
        std::shared_ptr<WarmJail> t = ready_template();
        const bool forked = static_cast<bool>(t);
        auto j = std::make_unique<WarmJail>(spec_, loop_, std::move(t));
        try {
            j->start();
            if (forked) ++forks_;
        } catch (const Error& e) {
            if (forked) {
                template_failed(e.what());
                continue;  // started as before, now
            }
            jail_failed(e.what());
            return;
        }
        adopt(std::move(j));
        ++refills_;
        --room;
    }
}

}  // namespace stockade::serve
