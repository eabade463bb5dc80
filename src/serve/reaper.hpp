// Jails the server is done with, on their way out: answered tasks, closed
// or idle sessions, a gone client's tasks (Server::retire). Each is killed
// first; its init then takes a millisecond or more to be gone (the pid
// namespace's teardown, its python's memory), and its cgroup can be removed
// only after. The loop does not wait for that: the jail is held here, still
// counted against --max-jails, and destroyed when its pidfd says the init
// has ended, at which point reaping and removal do not block.
#pragma once
#include <cstddef>
#include <list>
#include <memory>

#include "serve/warm_jail.hpp"
#include "util/event_loop.hpp"

namespace stockade::serve {

class Reaper {
public:
    explicit Reaper(EventLoop& loop) : loop_(loop) {}
    // j has been sent its kill (or has ended); destroyed at once if its init
    // is already gone or it never had one.
    void bury(std::unique_ptr<WarmJail> j);
    size_t size() const { return dying_.size(); }
    // Destroys the longest-dying jail now, waiting for its init if it must
    // (for a place under --max-jails that someone asks for); false if none.
    bool reap_one();

private:
    struct Dying {
        std::unique_ptr<WarmJail> jail;
        IoWatch gone;
    };
    EventLoop& loop_;
    std::list<Dying> dying_;
};

}  // namespace stockade::serve
