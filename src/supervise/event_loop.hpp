// One poll() loop for any number of event sources: the jails' supervisors, the
// caller's signals, and (for `serve`) listening and client sockets. Each source
// appends the fds it wants this round, and gets the same entries back with
// their results; a source with no fd ready is still called, so it can run its
// timers.
#pragma once
#include <poll.h>

#include <cstddef>
#include <vector>

namespace stockade::supervise {

class Source {
public:
    virtual ~Source() = default;
    virtual void fill(std::vector<pollfd>& fds) = 0;
    virtual void handle(const pollfd* fds, size_t n) = 0;
    // How long poll may wait for this source's sake (-1: no limit); asked after fill.
    virtual int timeout_ms() const { return -1; }
};

class EventLoop {
public:
    void add(Source* s);
    void remove(Source* s);
    // One poll() over every source, then each source's handle(); poll waits
    // at most max_wait_ms (-1: as long as the sources allow). Throws Error.
    void run_once(int max_wait_ms = -1);

private:
    std::vector<Source*> sources_;
    std::vector<pollfd> fds_;
    std::vector<std::pair<size_t, size_t>> ranges_;
};

}  // namespace stockade::supervise
