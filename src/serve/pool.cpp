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
        std::unique_ptr<WarmJail> j = std::move(*it);
        jails_.erase(it);
        j->supervisor().set_cpu_weight(kTaskCpuWeight);
        return j;
    }
    return nullptr;
}

// Every jail enters the pool here, refilled or started elsewhere: warming ahead.
void Pool::adopt(std::unique_ptr<WarmJail> j) {
    j->supervisor().set_cpu_weight(kAheadCpuWeight);
    jails_.push_back(std::move(j));
}

bool Pool::drop_one() {
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
    if (jails_.size() >= target_ || !not_before_ns_) return -1;
    uint64_t now = monotonic_ns();
    return now >= not_before_ns_ ? 0 : static_cast<int>((not_before_ns_ - now) / 1000000 + 1);
}

void Pool::tick() {
    for (auto it = jails_.begin(); it != jails_.end();) {
        if (!(*it)->ended()) {
            if ((*it)->state() == WarmJail::State::Ready) consecutive_failures_ = 0;
            ++it;
            continue;
        }
        ++failures_;
        last_error_ = (*it)->warmup_error();
        (*it)->collect();
        it = jails_.erase(it);
        // 50 ms, doubling to 10 s: a broken preload costs a few jails, not a loop.
        ++consecutive_failures_;
        uint64_t pause_ms = std::min<uint64_t>(10000, 50ull << std::min(consecutive_failures_, 8u));
        not_before_ns_ = monotonic_ns() + pause_ms * 1000000;
    }
}

void Pool::refill(size_t room) {
    if (not_before_ns_ && monotonic_ns() < not_before_ns_) return;
    while (jails_.size() < target_ && room > 0) {
        auto j = std::make_unique<WarmJail>(spec_, loop_);
        try {
            j->start();
        } catch (const Error& e) {
            ++failures_;
            last_error_ = e.what();
            ++consecutive_failures_;
            not_before_ns_ =
                monotonic_ns() + std::min<uint64_t>(10000, 50ull << std::min(consecutive_failures_, 8u)) * 1000000;
            return;
        }
        adopt(std::move(j));
        ++refills_;
        --room;
    }
}

}  // namespace stockade::serve
