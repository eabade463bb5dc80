#include "supervise/proxy.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/hostname.hpp"
#include "supervise/http_framing.hpp"
#include "util/clock.hpp"

namespace stockade::supervise {

namespace {
constexpr size_t kHeadMax = 16384;
constexpr size_t kBuf = 65536;
uint64_t now_ms() { return monotonic_ns() / 1000000; }
}  // namespace

struct Proxy::Conn {
    UniqueFd client, upstream;
    IoWatch client_w, upstream_w;
    enum class State { Head, Resolving, Connecting, Tunnel, Draining, Done } state = State::Head;
    uint64_t serial = 0;
    uint64_t lookup = 0;  // the resolver's id while Resolving
    std::string method;
    std::string host;         // normalized
    bool unrecorded = false;  // no room for its record: counted when decided
    uint16_t port = 0;
    std::string forward;    // the rewritten request head for plain HTTP
    std::string head;       // request head as read
    std::string to_up;      // bytes waiting for the upstream
    std::string to_client;  // bytes waiting for the client
    bool client_eof = false, up_eof = false;
    bool connect_method = false;
    uint64_t since = 0;  // last activity
    uint64_t born = 0;
    long record = -1;
    // Plain HTTP: the request body's bytes still to pass (Content-Length).
    // Past them nothing more of the client's goes upstream: a second request
    // on the connection would carry a Host that nobody checked. -1: a
    // CONNECT tunnel, where the bytes are TLS and the destination is fixed.
    int64_t body_left = -1;
    // Plain HTTP: where the one response ends, so the connection closes then.
    std::unique_ptr<ResponseFraming> response;
    bool counted = false;  // holds a place in the process-wide budget
};

namespace {
// All proxies of one process share its fd table: in serve, many jails. The
// per-jail cap alone would let N jails hold N times it; this one counts
// every connection of the process (two fds each).
size_t g_live = 0;
size_t g_budget = 512;
}  // namespace

void Proxy::set_process_budget(size_t connections) { g_budget = connections ? connections : 1; }
size_t Proxy::process_connections() { return g_live; }

Proxy::Proxy(Options o, uint64_t t0_ns, EventLoop& loop)
    : opt_(std::move(o)),
      t0_(t0_ns),
      loop_(loop),
      wake_(loop, [] {}),  // a deadline: prepare() runs the timeouts
      prepare_(loop, Hook::When::Prepare, [this] { prepare(); }),
      resolver_(opt_.nameservers, opt_.resolve_timeout_ms, loop) {}
Proxy::~Proxy() {
    for (auto& c : conns_)
        if (c->counted) --g_live;
}

Proxy::Conn* Proxy::find(uint64_t serial) {
    for (auto& c : conns_)
        if (c->serial == serial && c->state != Conn::State::Done) return c.get();
    return nullptr;
}

NetRecord* Proxy::add_record(const std::string& method, const std::string& host, uint16_t port) {
    if (records_.size() >= opt_.max_records) return nullptr;
    NetRecord rec;
    rec.t_ms = static_cast<double>(monotonic_ns() - t0_) / 1e6;
    rec.method = net::printable(method, 32);
    rec.host = net::printable(host, 256);
    rec.port = port;
    records_.push_back(std::move(rec));
    return &records_.back();
}

void Proxy::add_listener(int fd) {
    listener_ = UniqueFd(fd);
    // After the connections in a round: closes already queued free their
    // slots before new clients are taken.
    listener_w_ = IoWatch(
        loop_, fd, POLLIN,
        [this](short revents) {
            if (revents) accept_one();
        },
        1);
}

void Proxy::prepare() {
    const int next = expire();
    for (auto& c : conns_) {
        short ce = 0, ue = 0;
        switch (c->state) {
            case Conn::State::Head:
                ce = POLLIN;
                break;
            case Conn::State::Resolving:
                break;
            case Conn::State::Connecting:
                ue = POLLOUT;
                break;
            case Conn::State::Tunnel:
            case Conn::State::Draining:
                if (!c->client_eof && c->to_up.size() < kBuf) ce |= POLLIN;
                if (!c->to_client.empty()) ce |= POLLOUT;
                if (!c->up_eof && c->to_client.size() < kBuf) ue |= POLLIN;
                if (!c->to_up.empty()) ue |= POLLOUT;
                break;
            case Conn::State::Done:
                break;
        }
        c->client_w.set(c->client.get(), ce);
        c->upstream_w.set(c->upstream.get(), ue);
    }
    resolver_.prepare();
    if (next >= 0)
        wake_.arm_in_ms(static_cast<uint64_t>(next));
    else
        wake_.disarm();
}

void Proxy::sweep() {
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [](auto& c) { return c->state == Conn::State::Done; }),
                 conns_.end());
}

void Proxy::on_ready(uint64_t serial, bool client_side, short revents) {
    Conn* cp = find(serial);
    if (!cp) return;
    Conn& c = *cp;
    const bool is_client = client_side && c.client;
    const bool is_up = !client_side && c.upstream;
    if (!is_client && !is_up) return;
    c.since = now_ms();
    if (c.state == Conn::State::Head && is_client) {
        char buf[4096];
        ssize_t n = ::recv(c.client.get(), buf, sizeof buf, 0);
        if (n <= 0) {
            close(c);
        } else {
            c.head.append(buf, static_cast<size_t>(n));
            if (c.head.find("\r\n\r\n") != std::string::npos)
                on_head(c);
            else if (c.head.size() > kHeadMax)
                refuse(c, 431, "request head larger than 16 KiB");
        }
    } else if (c.state == Conn::State::Connecting && is_up) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            if (c.record >= 0) {
                records_[static_cast<size_t>(c.record)].allowed = false;
                records_[static_cast<size_t>(c.record)].reason = std::string("connect: ") + std::strerror(err);
            }
            refuse(c, 502, std::string("cannot connect: ") + std::strerror(err));
        } else {
            c.state = Conn::State::Tunnel;
            if (c.connect_method) c.to_client = "HTTP/1.1 200 Connection established\r\n\r\n";
        }
    } else if (c.state == Conn::State::Tunnel || c.state == Conn::State::Draining) {
        if (revents & (POLLIN | POLLHUP | POLLERR)) pump(c, is_client);
        if (c.state != Conn::State::Done && (revents & POLLOUT)) flush(c, is_client);
    }
    sweep();
}

void Proxy::accept_one() {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (conns_.size() >= opt_.max_connections || g_live >= g_budget) {
        // Bounded: a jail (or all of them together) cannot exhaust the
        // supervisor's fds or memory.
        static const char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nstockade: too many proxy connections\n";
        (void)!::send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        return;
    }
    auto c = std::make_unique<Conn>();
    c->serial = next_serial_++;
    c->client = UniqueFd(fd);
    c->since = c->born = now_ms();
    c->counted = true;
    ++g_live;
    const uint64_t serial = c->serial;
    c->client_w = IoWatch(loop_, -1, 0, [this, serial](short revents) { on_ready(serial, true, revents); });
    c->upstream_w = IoWatch(loop_, -1, 0, [this, serial](short revents) { on_ready(serial, false, revents); });
    conns_.push_back(std::move(c));
}

void Proxy::refuse(Conn& c, int code, const std::string& why) {
    const char* text = code == 403   ? "Forbidden"
                       : code == 400 ? "Bad Request"
                       : code == 502 ? "Bad Gateway"
                       : code == 431 ? "Request Header Fields Too Large"
                       : code == 411 ? "Length Required"
                                     : "Error";
    std::string body = "stockade proxy: " + why + "\n";
    c.to_client = "HTTP/1.1 " + std::to_string(code) + " " + text +
                  "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n\r\n" + body;
    c.upstream.reset();
    c.up_eof = c.client_eof = true;
    c.state = Conn::State::Draining;
    flush(c, true);
}

namespace {

// Request heads are read strictly: anything a server might split differently
// from us (a bare CR or LF, a NUL, other control bytes) is refused outright.
bool clean_head(const std::string& head) {
    for (size_t i = 0; i < head.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(head[i]);
        if (c == '\r') {
            if (i + 1 >= head.size() || head[i + 1] != '\n') return false;
            ++i;
            continue;
        }
        if (c == '\n' || c == 0x7f || (c < 0x20 && c != '\t')) return false;
    }
    return true;
}

// "host[:port]" or "[v6][:port]" into a normalized host (a name or an IP
// literal) and a port; false if either part is malformed.
bool split_host_port(const std::string& hp, uint16_t dflt, std::string& host, uint16_t& port) {
    std::string h = hp, p;
    bool bracketed = false;
    if (!h.empty() && h.front() == '[') {
        size_t close = h.find(']');
        if (close == std::string::npos) return false;
        if (close + 1 < h.size()) {
            if (h[close + 1] != ':') return false;
            p = h.substr(close + 2);
            if (p.empty()) return false;
        }
        h = h.substr(1, close - 1);
        bracketed = true;
    } else if (size_t colon = h.rfind(':'); colon != std::string::npos) {
        p = h.substr(colon + 1);
        h = h.substr(0, colon);
        if (p.empty()) return false;
    }
    if (p.empty()) {
        port = dflt;
    } else {
        if (p.size() > 5 || !std::all_of(p.begin(), p.end(), [](unsigned char ch) { return ch >= '0' && ch <= '9'; }))
            return false;
        int v = std::stoi(p);
        if (v < 1 || v > 65535) return false;
        port = static_cast<uint16_t>(v);
    }
    if (auto ip = net::parse_ip(h)) {
        if (bracketed != (ip->ss_family == AF_INET6)) return false;
        host = net::to_string(*ip);
        return true;
    }
    if (bracketed) return false;
    auto name = net::normalize_host(h);
    if (!name) return false;
    host = *name;
    return true;
}

}  // namespace

void Proxy::on_head(Conn& c) {
    size_t end = c.head.find("\r\n\r\n") + 4;
    std::string head = c.head.substr(0, end), rest = c.head.substr(end);
    if (!clean_head(head)) return refuse(c, 400, "malformed request head (control bytes, or a bare CR or LF)");
    size_t eol = head.find("\r\n");
    std::string line = head.substr(0, eol);
    size_t s1 = line.find(' '), s2 = line.find(' ', s1 == std::string::npos ? 0 : s1 + 1);
    if (s1 == std::string::npos || s2 == std::string::npos || line.find(' ', s2 + 1) != std::string::npos)
        return refuse(c, 400, "malformed request line");
    std::string method = line.substr(0, s1), target = line.substr(s1 + 1, s2 - s1 - 1), version = line.substr(s2 + 1);
    if (method.empty() ||
        !std::all_of(method.begin(), method.end(), [](unsigned char ch) { return ch >= 'A' && ch <= 'Z'; }) ||
        (version != "HTTP/1.1" && version != "HTTP/1.0"))
        return refuse(c, 400, "malformed request line");
    std::string host, path = "/";
    uint16_t port = 0;
    std::string forward;
    if (method == "CONNECT") {
        if (!split_host_port(target, 0, host, port) || port == 0) {
            if (NetRecord* r = add_record(method, target, 0)) {
                r->reason = "not a valid host:port";
                merge_refusal(records_.size() - 1);
            } else {
                refusal_without_record(method, target, 0, "not a valid host:port");
            }
            return refuse(c, 400, "CONNECT needs host:port with a valid host name or IP address");
        }
        c.connect_method = true;
        c.to_up = rest;
    } else {
        if (target.rfind("http://", 0) != 0)
            return refuse(
                c, 400,
                target.rfind("https://", 0) == 0 ? "use CONNECT for https" : "expected an absolute http:// URI");
        std::string hp = target.substr(7);
        size_t slash = hp.find_first_of("/?#");
        if (slash != std::string::npos) {
            path = hp.substr(slash);
            if (path[0] != '/') path = "/" + path;
            hp = hp.substr(0, slash);
        }
        if (!split_host_port(hp, 80, host, port)) {
            if (NetRecord* r = add_record(method, hp, 0)) {
                r->reason = "not a valid host";
                merge_refusal(records_.size() - 1);
            } else {
                refusal_without_record(method, hp, 0, "not a valid host");
            }
            return refuse(c, 400, "bad host in URI");
        }
        // origin-form to the server, one request per connection. The Host header
        // is the target's, whatever the client sent: the server must see the
        // destination that the allowlist checked, not another.
        forward = method + " " + path + " " + version + "\r\n";
        forward += "Host: " + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                   (port == 80 ? "" : ":" + std::to_string(port)) + "\r\n";
        std::string headers = head.substr(eol + 2, head.size() - eol - 2 - 2);
        int64_t length = -1;
        size_t pos = 0;
        while (pos < headers.size()) {
            size_t e = headers.find("\r\n", pos);
            if (e == std::string::npos) e = headers.size();
            std::string h = headers.substr(pos, e - pos);
            pos = e + 2;
            if (h.empty()) continue;
            if (h[0] == ' ' || h[0] == '\t') return refuse(c, 400, "folded header lines are not accepted");
            std::string lowh = h;
            std::transform(lowh.begin(), lowh.end(), lowh.begin(), ::tolower);
            if (lowh.rfind("proxy-", 0) == 0 || lowh.rfind("connection:", 0) == 0 || lowh.rfind("keep-alive", 0) == 0 ||
                lowh.rfind("host:", 0) == 0)
                continue;
            // The body's end must be known, so that nothing after it reaches the server.
            if (lowh.rfind("transfer-encoding:", 0) == 0)
                return refuse(c, 411, "request bodies must have a Content-Length (Transfer-Encoding is not passed)");
            if (lowh.rfind("content-length:", 0) == 0) {
                std::string v = lowh.substr(15);
                v.erase(0, v.find_first_not_of(" \t"));
                v.erase(v.find_last_not_of(" \t") + 1);
                if (v.empty() || v.size() > 15 ||
                    !std::all_of(v.begin(), v.end(), [](unsigned char ch) { return ch >= '0' && ch <= '9'; }))
                    return refuse(c, 400, "malformed Content-Length");
                int64_t n = std::stoll(v);
                if (length >= 0 && n != length) return refuse(c, 400, "conflicting Content-Length headers");
                length = n;
            }
            forward += h + "\r\n";
        }
        c.body_left = length < 0 ? 0 : length;
        c.response = std::make_unique<ResponseFraming>(method == "HEAD");
        // One request per connection: what follows its body (a pipelined
        // second request) is never passed on.
        const size_t body = std::min<size_t>(rest.size(), static_cast<size_t>(c.body_left));
        c.body_left -= static_cast<int64_t>(body);
        forward += "Connection: close\r\n\r\n" + rest.substr(0, body);
    }
    start(c, method, host, port, forward);
}

// A refusal with no record of its own (the records are full): counted on an
// identical earlier one if there is one, and as dropped otherwise.
void Proxy::refusal_without_record(const std::string& method, const std::string& host, uint16_t port,
                                   const std::string& reason) {
    const std::string m = net::printable(method, 32), h = net::printable(host, 256), why = net::printable(reason, 512);
    for (auto& o : records_)
        if (!o.allowed && o.method == m && o.host == h && o.port == port && o.reason == why) {
            ++o.count;
            return;
        }
    ++dropped_;
}

// Repeats of one refusal become one record with a count: a jail looping on a
// refused destination costs the supervisor nothing more. Only the newest
// record is folded, so no other connection's record index moves.
void Proxy::merge_refusal(size_t idx) {
    if (idx + 1 != records_.size()) return;
    const NetRecord& r = records_[idx];
    for (size_t i = 0; i < idx; ++i) {
        NetRecord& o = records_[i];
        if (!o.allowed && o.method == r.method && o.host == r.host && o.port == r.port && o.reason == r.reason) {
            ++o.count;
            records_.pop_back();
            return;
        }
    }
}

void Proxy::deny(Conn& c, const std::string& why) {
    if (c.record >= 0) {
        NetRecord& r = records_[static_cast<size_t>(c.record)];
        r.allowed = false;
        r.reason = net::printable(why, 512);
        merge_refusal(static_cast<size_t>(c.record));
        c.record = -1;
    } else if (c.unrecorded) {
        refusal_without_record(c.method, c.host, c.port, why);
        c.unrecorded = false;
    }
    refuse(c, 403, why);
}

void Proxy::start(Conn& c, const std::string& method, const std::string& host, uint16_t port, std::string forward) {
    NetRecord* r = add_record(method, host, port);
    c.record = r ? static_cast<long>(records_.size() - 1) : -1;
    c.unrecorded = !r;
    c.method = method;
    c.host = host;
    c.port = port;
    c.forward = std::move(forward);
    const std::string dest = host + ":" + std::to_string(port);

    if (auto ip = net::parse_ip(host)) {
        // An IP literal is allowed only if that address (or its range) is listed.
        if (!opt_.allow.lists_address(*ip, port)) return deny(c, dest + " is not on the allow list");
        return connect_to(c, {*ip});
    }
    if (!opt_.allow.allows_name(host, port)) return deny(c, dest + " is not on the allow list");
    if (auto pin = opt_.pins.find(host); pin != opt_.pins.end()) {
        auto ip = net::parse_ip(pin->second);
        if (!ip) return deny(c, "bad pin for " + host);
        return resolved(c, "", {*ip});
    }
    c.state = Conn::State::Resolving;
    c.since = now_ms();
    const uint64_t serial = c.serial;
    c.lookup = resolver_.lookup(host, [this, serial](const std::string& status, std::vector<sockaddr_storage> addrs) {
        if (Conn* conn = find(serial)) resolved(*conn, status, std::move(addrs));
    });
}

void Proxy::resolved(Conn& c, const std::string& status, std::vector<sockaddr_storage> addrs) {
    c.lookup = 0;
    if (!status.empty()) return deny(c, "cannot resolve " + c.host + ": " + status);
    // Every address must be public, or listed by address itself: an allowed
    // name pointing inside (DNS rebinding, a pinned 127.0.0.1) is refused.
    for (const auto& a : addrs)
        if (net::is_internal(a) && !opt_.allow.lists_address(a, c.port))
            return deny(c, c.host + " resolves to " + net::to_string(a) +
                               ", an internal address that is not on the allow list");
    connect_to(c, std::move(addrs));
}

void Proxy::connect_to(Conn& c, std::vector<sockaddr_storage> addrs) {
    if (addrs.empty()) return deny(c, "no address for " + c.host);
    sockaddr_storage dst = addrs.front();
    socklen_t len;
    if (dst.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&dst)->sin_port = htons(c.port);
        len = sizeof(sockaddr_in);
    } else {
        reinterpret_cast<sockaddr_in6*>(&dst)->sin6_port = htons(c.port);
        len = sizeof(sockaddr_in6);
    }
    c.upstream = UniqueFd(::socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.upstream) return deny(c, std::string("socket: ") + std::strerror(errno));
    if (::connect(c.upstream.get(), reinterpret_cast<sockaddr*>(&dst), len) < 0 && errno != EINPROGRESS)
        return deny(c, "connect " + net::to_string(dst) + ": " + std::strerror(errno));
    if (c.record >= 0) {
        records_[static_cast<size_t>(c.record)].allowed = true;
        records_[static_cast<size_t>(c.record)].reason = net::to_string(dst);
    } else if (c.unrecorded) {
        ++dropped_;  // allowed connections are never merged
        c.unrecorded = false;
    }
    if (!c.forward.empty()) c.to_up = std::move(c.forward);
    c.state = Conn::State::Connecting;
    c.since = now_ms();
}

void Proxy::pump(Conn& c, bool from_client) {
    int in = from_client ? c.client.get() : c.upstream.get();
    std::string& buf = from_client ? c.to_up : c.to_client;
    char tmp[kBuf];
    ssize_t n = ::recv(in, tmp, sizeof tmp, 0);
    if (n > 0 && from_client && c.body_left >= 0) {
        // Plain HTTP: only the rest of the one checked request's body.
        const size_t pass = std::min<size_t>(static_cast<size_t>(n), static_cast<size_t>(c.body_left));
        c.body_left -= static_cast<int64_t>(pass);
        n = static_cast<ssize_t>(pass);
        if (n == 0) return;
    }
    bool response_over = false;
    if (n > 0 && !from_client && c.response) {
        // Nothing past the one response reaches the client, and the
        // connection ends with it even if the server would keep it open.
        n = static_cast<ssize_t>(c.response->feed(tmp, static_cast<size_t>(n)));
        response_over = c.response->done();
    }
    if (n > 0) {
        buf.append(tmp, static_cast<size_t>(n));
        if (c.record >= 0) {
            NetRecord& r = records_[static_cast<size_t>(c.record)];
            (from_client ? r.bytes_up : r.bytes_down) += static_cast<uint64_t>(n);
        }
        if (response_over) {
            c.up_eof = true;
            c.upstream.reset();
        }
        flush(c, !from_client);
        return;
    }
    if (response_over) {
        c.up_eof = true;
        c.upstream.reset();
        flush(c, true);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    (from_client ? c.client_eof : c.up_eof) = true;
    flush(c, !from_client);
}

void Proxy::flush(Conn& c, bool to_client) {
    int out = to_client ? c.client.get() : c.upstream.get();
    std::string& buf = to_client ? c.to_client : c.to_up;
    while (out >= 0 && !buf.empty()) {
        ssize_t n = ::send(out, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            close(c);
            return;
        }
        buf.erase(0, static_cast<size_t>(n));
    }
    // Half-close once a side is done and its data delivered.
    if (c.client_eof && c.to_up.empty() && c.upstream) ::shutdown(c.upstream.get(), SHUT_WR);
    if (c.up_eof && c.to_client.empty()) {
        if (c.client) ::shutdown(c.client.get(), SHUT_WR);
        // Plain HTTP: the one response is over, so is the connection (a
        // client that kept it alive learns so now, not at the idle timeout).
        if (c.client_eof || c.state == Conn::State::Draining || c.body_left >= 0) return close(c);
    }
    if (c.client_eof && c.up_eof && c.to_client.empty() && c.to_up.empty()) close(c);
}

void Proxy::close(Conn& c) {
    if (c.counted) --g_live;
    c.counted = false;
    if (c.lookup) resolver_.cancel(c.lookup);
    c.lookup = 0;
    c.client.reset();
    c.upstream.reset();
    c.state = Conn::State::Done;
}

int Proxy::expire() {
    // The resolver's deadlines first: they may move connections on.
    int next = resolver_.expire();
    uint64_t now = now_ms();
    for (auto& c : conns_) {
        if (c->state == Conn::State::Resolving || c->state == Conn::State::Done) continue;
        uint64_t limit = c->state == Conn::State::Head ? static_cast<uint64_t>(opt_.head_timeout_ms)
                                                       : static_cast<uint64_t>(opt_.idle_timeout_ms);
        uint64_t idle = now - c->since;
        if (idle >= limit) {
            if (c->state == Conn::State::Head) {
                refuse(*c, 408, "no request line in time");
                close(*c);
            } else {
                close(*c);
            }
            continue;
        }
        int left = static_cast<int>(limit - idle);
        if (next < 0 || left < next) next = left;
    }
    sweep();
    return next;
}

}  // namespace stockade::supervise
