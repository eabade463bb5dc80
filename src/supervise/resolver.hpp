// Name resolution for the proxy that never blocks the supervisor's loop:
// c-ares, driven by the same poll() as everything else. A DNS server that
// never answers costs one lookup its deadline, and nothing else waits for it:
// not the wall clock, not other connections, not teardown.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "util/event_loop.hpp"

struct ares_addrinfo;

namespace stockade::supervise {

class Resolver {
public:
    // status: "" on success, or why the name has no address.
    using Done = std::function<void(const std::string& status, std::vector<sockaddr_storage> addrs)>;

    // nameservers: "IP" or "IP:port" ("[v6]:port"); empty means /etc/resolv.conf.
    // Nothing is opened until the first lookup.
    Resolver(std::vector<std::string> nameservers, int deadline_ms, EventLoop& loop);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Starts a lookup (A and AAAA; /etc/hosts first). `done` runs from an
    // event on its sockets or from expire(), never from inside lookup().
    // Returns an id for cancel().
    uint64_t lookup(const std::string& name, Done done);
    // The caller has gone: its callback will not run.
    void cancel(uint64_t id);

    // Before each poll: c-ares' sockets of the moment, on the loop.
    void prepare();
    // Runs c-ares' timers and the deadlines; returns the ms until the next, or -1.
    int expire();
    size_t pending() const { return pending_.size(); }

private:
    struct Pending {
        Done done;
        uint64_t deadline_ms;
    };
    static void on_result(void* arg, int status, int timeouts, ::ares_addrinfo* res);
    void ensure_channel();
    void on_ready(size_t slot, short revents);

    std::vector<std::string> servers_;
    int deadline_ms_;
    EventLoop& loop_;
    std::vector<IoWatch> watches_;
    void* channel_ = nullptr;  // ares_channel
    uint64_t next_id_ = 1;
    std::map<uint64_t, Pending> pending_;
    // Results that arrived inside a c-ares call, delivered after it returns.
    std::vector<std::pair<uint64_t, std::pair<std::string, std::vector<sockaddr_storage>>>> ready_;
    void deliver();
};

}  // namespace stockade::supervise
