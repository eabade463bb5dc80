// The allowlist proxy (network mode "proxy"). Its listening socket lives in the
// jail's network namespace (the jail creates it and hands the fd out); the
// supervisor, in the host's namespace, accepts on it and makes the outbound
// connections itself, only to destinations the profile allows. CONNECT for TLS
// (never decrypted) and absolute-URI plain HTTP, one request per connection:
// its head is checked and rewritten, its body passed by Content-Length, and
// nothing after it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/allowlist.hpp"
#include "supervise/net_record.hpp"
#include "supervise/resolver.hpp"
#include "util/event_loop.hpp"
#include "util/fd.hpp"

namespace stockade::supervise {

class Proxy {
public:
    struct Options {
        net::Allowlist allow;
        std::map<std::string, std::string> pins;  // name -> IP, consulted before DNS
        std::vector<std::string> nameservers;     // empty: /etc/resolv.conf
        size_t max_connections = 64;
        int head_timeout_ms = 10000;
        int idle_timeout_ms = 60000;
        int resolve_timeout_ms = 5000;
        // The records are the supervisor's memory, not the jail's: bounded.
        size_t max_records = 1000;
    };
    // Its fds and deadlines go on the loop, which must outlive it.
    Proxy(Options o, uint64_t t0_ns, EventLoop& loop);
    ~Proxy();

    // Every proxy connection of this process, whichever jail it serves, counts
    // against one budget (serve sizes it from RLIMIT_NOFILE).
    static void set_process_budget(size_t connections);
    static size_t process_connections();

    void add_listener(int fd);
    const std::vector<NetRecord>& records() const { return records_; }
    // Records that did not fit under max_records.
    uint64_t dropped() const { return dropped_; }

private:
    struct Conn;
    void accept_one();
    void prepare();
    // Closes connections past their timeouts; returns the ms until the next one.
    int expire();
    void on_ready(uint64_t serial, bool client_side, short revents);
    void sweep();
    void on_head(Conn& c);
    void refuse(Conn& c, int code, const std::string& why);
    void start(Conn& c, const std::string& method, const std::string& host, uint16_t port, std::string forward);
    void resolved(Conn& c, const std::string& status, std::vector<sockaddr_storage> addrs);
    void connect_to(Conn& c, std::vector<sockaddr_storage> addrs);
    void deny(Conn& c, const std::string& why);
    void merge_refusal(size_t idx);
    void refusal_without_record(const std::string& method, const std::string& host, uint16_t port,
                                const std::string& reason);
    NetRecord* add_record(const std::string& method, const std::string& host, uint16_t port);
    Conn* find(uint64_t serial);
    void pump(Conn& c, bool from_client);
    void flush(Conn& c, bool to_client);
    void close(Conn& c);

    Options opt_;
    uint64_t t0_;
    EventLoop& loop_;
    UniqueFd listener_;
    IoWatch listener_w_;
    Timer wake_;
    Hook prepare_;
    std::vector<std::unique_ptr<Conn>> conns_;
    std::vector<NetRecord> records_;
    uint64_t dropped_ = 0;
    uint64_t next_serial_ = 1;
    Resolver resolver_;
};

}  // namespace stockade::supervise
