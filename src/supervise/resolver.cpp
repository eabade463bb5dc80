#include "supervise/resolver.hpp"

#include <ares.h>

#include <cstring>
#include <memory>

#include "util/error.hpp"
#include "util/clock.hpp"

namespace stockade::supervise {
namespace {

uint64_t now_ms() { return monotonic_ns() / 1000000; }

struct Query {
    Resolver* self;
    uint64_t id;
};

// One c-ares library init for the process, whatever number of resolvers.
void library_init() {
    static const int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) throw Error(std::string("c-ares: ") + ares_strerror(rc));
}

}  // namespace

Resolver::Resolver(std::vector<std::string> nameservers, int deadline_ms, EventLoop& loop)
    : servers_(std::move(nameservers)), deadline_ms_(deadline_ms), loop_(loop) {}

Resolver::~Resolver() {
    pending_.clear();  // ares_destroy calls back with ARES_EDESTRUCTION: nothing left to run
    if (channel_) ares_destroy(static_cast<ares_channel>(channel_));
}

void Resolver::ensure_channel() {
    if (channel_) return;
    library_init();
    struct ares_options o {};
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
    // Each try waits at most a second; the deadline below bounds the whole lookup.
    o.timeout = 1000;
    o.tries = 2;
    o.lookups = const_cast<char*>("fb");  // /etc/hosts, then DNS
    ares_channel ch = nullptr;
    int rc = ares_init_options(&ch, &o, mask);
    if (rc != ARES_SUCCESS) throw Error(std::string("proxy resolver: ") + ares_strerror(rc));
    channel_ = ch;
    if (!servers_.empty()) {
        std::string csv;
        for (const auto& s : servers_) csv += (csv.empty() ? "" : ",") + s;
        rc = ares_set_servers_ports_csv(ch, csv.c_str());
        if (rc != ARES_SUCCESS) throw Error("proxy resolver: network.nameservers: " + std::string(ares_strerror(rc)));
    }
}

uint64_t Resolver::lookup(const std::string& name, Done done) {
    ensure_channel();
    uint64_t id = next_id_++;
    pending_[id] = Pending{std::move(done), now_ms() + static_cast<uint64_t>(deadline_ms_)};
    struct ares_addrinfo_hints hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(static_cast<ares_channel>(channel_), name.c_str(), nullptr, &hints, &Resolver::on_result,
                     new Query{this, id});
    deliver();  // an /etc/hosts answer may already be there
    return id;
}

void Resolver::cancel(uint64_t id) { pending_.erase(id); }

void Resolver::on_result(void* arg, int status, int, ::ares_addrinfo* res) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    std::vector<sockaddr_storage> addrs;
    std::string why;
    if (status == ARES_SUCCESS && res) {
        for (auto* n = res->nodes; n; n = n->ai_next) {
            if (!n->ai_addr || n->ai_addrlen > sizeof(sockaddr_storage)) continue;
            sockaddr_storage ss{};
            std::memcpy(&ss, n->ai_addr, n->ai_addrlen);
            addrs.push_back(ss);
        }
    } else {
        why = ares_strerror(status);
    }
    if (res) ares_freeaddrinfo(res);
    if (status == ARES_EDESTRUCTION) return;  // the resolver is going away
    q->self->ready_.push_back({q->id, {why, std::move(addrs)}});
}

void Resolver::deliver() {
    while (!ready_.empty()) {
        auto batch = std::move(ready_);
        ready_.clear();
        for (auto& [id, r] : batch) {
            auto it = pending_.find(id);
            if (it == pending_.end()) continue;  // cancelled, or past its deadline
            Done done = std::move(it->second.done);
            pending_.erase(it);
            done(r.first, std::move(r.second));
        }
    }
}

void Resolver::prepare() {
    size_t used = 0;
    if (channel_ && !pending_.empty()) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(static_cast<ares_channel>(channel_), socks, ARES_GETSOCK_MAXNUM);
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
            short ev = 0;
            if (ARES_GETSOCK_READABLE(bits, i)) ev |= POLLIN;
            if (ARES_GETSOCK_WRITABLE(bits, i)) ev |= POLLOUT;
            if (!ev) continue;
            if (used == watches_.size())
                watches_.emplace_back(loop_, -1, 0, [this, used](short revents) { on_ready(used, revents); });
            watches_[used++].set(socks[i], ev);
        }
    }
    for (size_t i = used; i < watches_.size(); ++i) watches_[i].set(-1, 0);
}

void Resolver::on_ready(size_t slot, short revents) {
    const int fd = watches_[slot].fd();
    if (!channel_ || fd < 0) return;
    ares_socket_t r = (revents & (POLLIN | POLLERR | POLLHUP)) ? fd : ARES_SOCKET_BAD;
    ares_socket_t w = (revents & POLLOUT) ? fd : ARES_SOCKET_BAD;
    ares_process_fd(static_cast<ares_channel>(channel_), r, w);
    deliver();
}

int Resolver::expire() {
    if (!channel_ || pending_.empty()) return -1;
    ares_process_fd(static_cast<ares_channel>(channel_), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    deliver();
    const uint64_t now = now_ms();
    int next = -1;
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline_ms <= now) {
            Done done = std::move(it->second.done);
            it = pending_.erase(it);
            done("no answer within " + std::to_string(deadline_ms_) + " ms", {});
            continue;
        }
        int left = static_cast<int>(it->second.deadline_ms - now);
        if (next < 0 || left < next) next = left;
        ++it;
    }
    if (!pending_.empty()) {
        struct timeval max {
            1, 0
        }, tv;
        if (struct timeval* t = ares_timeout(static_cast<ares_channel>(channel_), &max, &tv)) {
            int ms = static_cast<int>(t->tv_sec * 1000 + t->tv_usec / 1000) + 1;
            if (next < 0 || ms < next) next = ms;
        }
    }
    return next;
}

}  // namespace stockade::supervise
