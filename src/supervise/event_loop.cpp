#include "supervise/event_loop.hpp"

#include <algorithm>
#include <cerrno>

#include "util/error.hpp"

namespace stockade::supervise {

void EventLoop::add(Source* s) { sources_.push_back(s); }

void EventLoop::remove(Source* s) { std::erase(sources_, s); }

void EventLoop::run_once(int max_wait_ms) {
    fds_.clear();
    ranges_.clear();
    int timeout = max_wait_ms;
    // A copy: a handler may add or remove sources (serve starts and ends jails).
    const std::vector<Source*> round = sources_;
    for (Source* s : round) {
        size_t begin = fds_.size();
        s->fill(fds_);
        ranges_.emplace_back(begin, fds_.size());
        int t = s->timeout_ms();
        if (t >= 0 && (timeout < 0 || t < timeout)) timeout = t;
    }
    if (::poll(fds_.data(), fds_.size(), timeout) < 0) {
        if (errno == EINTR) return;
        throw_sys("poll");
    }
    for (size_t i = 0; i < round.size(); ++i) {
        if (std::find(sources_.begin(), sources_.end(), round[i]) == sources_.end()) continue;
        round[i]->handle(fds_.data() + ranges_[i].first, ranges_[i].second - ranges_[i].first);
    }
}

}  // namespace stockade::supervise
