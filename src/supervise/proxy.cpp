#include "supervise/proxy.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sandbox/wire.hpp"

namespace stockade::supervise {

namespace {
constexpr size_t kHeadMax = 16384;
constexpr size_t kBuf = 65536;
uint64_t now_ms() { return sandbox::monotonic_ns() / 1000000; }
}  // namespace

struct Proxy::Conn {
    UniqueFd client, upstream;
    enum class State { Head, Connecting, Tunnel, Draining, Done } state = State::Head;
    std::string head;      // request head as read
    std::string to_up;     // bytes waiting for the upstream
    std::string to_client; // bytes waiting for the client
    bool client_eof = false, up_eof = false;
    bool connect_method = false;
    uint64_t since = 0;    // last activity
    uint64_t born = 0;
    long record = -1;
};

Proxy::Proxy(Options o, uint64_t t0_ns) : opt_(std::move(o)), t0_(t0_ns) {}
Proxy::~Proxy() = default;

void Proxy::fill(std::vector<pollfd>& fds) {
    for (auto& c : conns_) {
        short ce = 0, ue = 0;
        switch (c->state) {
            case Conn::State::Head: ce = POLLIN; break;
            case Conn::State::Connecting: ue = POLLOUT; break;
            case Conn::State::Tunnel:
            case Conn::State::Draining:
                if (!c->client_eof && c->to_up.size() < kBuf) ce |= POLLIN;
                if (!c->to_client.empty()) ce |= POLLOUT;
                if (!c->up_eof && c->to_client.size() < kBuf) ue |= POLLIN;
                if (!c->to_up.empty()) ue |= POLLOUT;
                break;
            case Conn::State::Done: break;
        }
        if (c->client && ce) fds.push_back({c->client.get(), ce, 0});
        if (c->upstream && ue) fds.push_back({c->upstream.get(), ue, 0});
    }
    // Last: closes already queued free their slots before new clients are taken.
    if (listener_) fds.push_back({listener_.get(), POLLIN, 0});
}

void Proxy::handle(const pollfd& p) {
    if (!p.revents) return;
    if (listener_ && p.fd == listener_.get()) {
        accept_one();
        return;
    }
    for (auto& cp : conns_) {
        Conn& c = *cp;
        bool is_client = c.client && p.fd == c.client.get();
        bool is_up = c.upstream && p.fd == c.upstream.get();
        if (!is_client && !is_up) continue;
        c.since = now_ms();
        if (c.state == Conn::State::Head && is_client) {
            char buf[4096];
            ssize_t n = ::recv(c.client.get(), buf, sizeof buf, 0);
            if (n <= 0) {
                close(c);
                break;
            }
            c.head.append(buf, static_cast<size_t>(n));
            if (c.head.find("\r\n\r\n") != std::string::npos) on_head(c);
            else if (c.head.size() > kHeadMax) refuse(c, 431, "request head larger than 16 KiB");
        } else if (c.state == Conn::State::Connecting && is_up) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(c.upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                records_[static_cast<size_t>(c.record)].allowed = false;
                records_[static_cast<size_t>(c.record)].reason = std::string("connect: ") + std::strerror(err);
                refuse(c, 502, std::string("cannot connect: ") + std::strerror(err));
                break;
            }
            c.state = Conn::State::Tunnel;
            if (c.connect_method) c.to_client = "HTTP/1.1 200 Connection established\r\n\r\n";
        } else if (c.state == Conn::State::Tunnel || c.state == Conn::State::Draining) {
            if (p.revents & (POLLIN | POLLHUP | POLLERR)) pump(c, is_client);
            if (c.state != Conn::State::Done && (p.revents & POLLOUT)) flush(c, is_client);
        }
        break;
    }
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [](auto& c) { return c->state == Conn::State::Done; }),
                 conns_.end());
}

void Proxy::accept_one() {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (conns_.size() >= opt_.max_connections) {
        // Bounded: a jail cannot exhaust the supervisor's fds or memory.
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nstockade: too many proxy connections\n";
        (void)!::send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        return;
    }
    auto c = std::make_unique<Conn>();
    c->client = UniqueFd(fd);
    c->since = c->born = now_ms();
    conns_.push_back(std::move(c));
}

void Proxy::refuse(Conn& c, int code, const std::string& why) {
    const char* text = code == 403 ? "Forbidden" : code == 400 ? "Bad Request" : code == 502 ? "Bad Gateway"
                       : code == 431 ? "Request Header Fields Too Large" : "Error";
    std::string body = "stockade proxy: " + why + "\n";
    c.to_client = "HTTP/1.1 " + std::to_string(code) + " " + text + "\r\nContent-Type: text/plain\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    c.upstream.reset();
    c.up_eof = c.client_eof = true;
    c.state = Conn::State::Draining;
    flush(c, true);
}

void Proxy::on_head(Conn& c) {
    size_t end = c.head.find("\r\n\r\n") + 4;
    std::string head = c.head.substr(0, end), rest = c.head.substr(end);
    size_t eol = head.find("\r\n");
    std::string line = head.substr(0, eol);
    size_t s1 = line.find(' '), s2 = line.rfind(' ');
    if (s1 == std::string::npos || s2 == s1) return refuse(c, 400, "malformed request line");
    std::string method = line.substr(0, s1), target = line.substr(s1 + 1, s2 - s1 - 1), version = line.substr(s2 + 1);
    std::string host, path = "/";
    uint16_t port = 0;
    auto split_host_port = [&](const std::string& hp, uint16_t dflt) -> bool {
        std::string h = hp, p;
        if (!h.empty() && h.front() == '[') {
            size_t close = h.find(']');
            if (close == std::string::npos) return false;
            if (close + 1 < h.size() && h[close + 1] == ':') p = h.substr(close + 2);
            h = h.substr(1, close - 1);
        } else if (size_t colon = h.rfind(':'); colon != std::string::npos) {
            p = h.substr(colon + 1);
            h = h.substr(0, colon);
        }
        host = h;
        if (p.empty()) port = dflt;
        else if (p.size() <= 5 && std::all_of(p.begin(), p.end(), ::isdigit) && std::stoi(p) > 0 && std::stoi(p) < 65536)
            port = static_cast<uint16_t>(std::stoi(p));
        else return false;
        return !host.empty();
    };
    std::string forward;
    if (method == "CONNECT") {
        if (!split_host_port(target, 0) || port == 0) return refuse(c, 400, "CONNECT needs host:port");
        c.connect_method = true;
        c.to_up = rest;
    } else {
        if (target.rfind("http://", 0) != 0)
            return refuse(c, 400, target.rfind("https://", 0) == 0 ? "use CONNECT for https" : "expected an absolute http:// URI");
        std::string hp = target.substr(7);
        size_t slash = hp.find('/');
        if (slash != std::string::npos) {
            path = hp.substr(slash);
            hp = hp.substr(0, slash);
        }
        if (!split_host_port(hp, 80)) return refuse(c, 400, "bad host in URI");
        // origin-form to the server, one request per connection
        forward = method + " " + path + " " + version + "\r\n";
        std::string headers = head.substr(eol + 2, head.size() - eol - 2 - 2);
        size_t pos = 0;
        while (pos < headers.size()) {
            size_t e = headers.find("\r\n", pos);
            if (e == std::string::npos) e = headers.size();
            std::string h = headers.substr(pos, e - pos);
            std::string lowh = h;
            std::transform(lowh.begin(), lowh.end(), lowh.begin(), ::tolower);
            if (lowh.rfind("proxy-", 0) != 0 && lowh.rfind("connection:", 0) != 0 && lowh.rfind("keep-alive", 0) != 0)
                forward += h + "\r\n";
            pos = e + 2;
        }
        forward += "Connection: close\r\n\r\n" + rest;
    }
    start(c, method, host, port, forward);
}

void Proxy::start(Conn& c, const std::string& method, const std::string& host, uint16_t port, std::string forward) {
    NetRecord rec;
    rec.t_ms = static_cast<double>(sandbox::monotonic_ns() - t0_) / 1e6;
    rec.method = method;
    rec.host = host;
    rec.port = port;
    records_.push_back(rec);
    c.record = static_cast<long>(records_.size() - 1);
    NetRecord& r = records_.back();
    auto deny = [&](const std::string& why) {
        r.allowed = false;
        r.reason = why;
        refuse(c, 403, why);
    };

    std::vector<sockaddr_storage> addrs;
    if (auto ip = net::parse_ip(host)) {
        // An IP literal is allowed only if that address (or its range) is listed.
        if (!opt_.allow.lists_address(*ip, port)) return deny(host + ":" + std::to_string(port) + " is not on the allow list");
        addrs.push_back(*ip);
    } else {
        if (!opt_.allow.allows_name(host, port)) return deny(host + ":" + std::to_string(port) + " is not on the allow list");
        std::string lname = host;
        std::transform(lname.begin(), lname.end(), lname.begin(), ::tolower);
        if (auto pin = opt_.pins.find(lname); pin != opt_.pins.end()) {
            if (auto ip = net::parse_ip(pin->second)) addrs.push_back(*ip);
        } else {
            struct addrinfo hints {};
            hints.ai_socktype = SOCK_STREAM;
            struct addrinfo* res = nullptr;
            if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0)
                return deny("cannot resolve " + host + ": " + ::gai_strerror(rc));
            for (auto* a = res; a; a = a->ai_next) {
                sockaddr_storage ss{};
                std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
                addrs.push_back(ss);
            }
            ::freeaddrinfo(res);
        }
        // Every address must be public, or listed by address itself: an allowed
        // name pointing inside (DNS rebinding, a pinned 127.0.0.1) is refused.
        for (const auto& a : addrs)
            if (net::is_internal(a) && !opt_.allow.lists_address(a, port))
                return deny(host + " resolves to " + net::to_string(a) +
                            ", an internal address that is not on the allow list");
    }
    if (addrs.empty()) return deny("no address for " + host);
    sockaddr_storage dst = addrs.front();
    socklen_t len;
    if (dst.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&dst)->sin_port = htons(port);
        len = sizeof(sockaddr_in);
    } else {
        reinterpret_cast<sockaddr_in6*>(&dst)->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
    }
    c.upstream = UniqueFd(::socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.upstream) return deny(std::string("socket: ") + std::strerror(errno));
    if (::connect(c.upstream.get(), reinterpret_cast<sockaddr*>(&dst), len) < 0 && errno != EINPROGRESS)
        return deny("connect " + net::to_string(dst) + ": " + std::strerror(errno));
    r.allowed = true;
    r.reason = net::to_string(dst);
    if (!forward.empty()) c.to_up = std::move(forward);
    c.state = Conn::State::Connecting;
}

void Proxy::pump(Conn& c, bool from_client) {
    int in = from_client ? c.client.get() : c.upstream.get();
    std::string& buf = from_client ? c.to_up : c.to_client;
    char tmp[kBuf];
    ssize_t n = ::recv(in, tmp, sizeof tmp, 0);
    if (n > 0) {
        buf.append(tmp, static_cast<size_t>(n));
        NetRecord& r = records_[static_cast<size_t>(c.record)];
        (from_client ? r.bytes_up : r.bytes_down) += static_cast<uint64_t>(n);
        flush(c, !from_client);
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
        if (c.client_eof || c.state == Conn::State::Draining) close(c);
    }
    if (c.client_eof && c.up_eof && c.to_client.empty() && c.to_up.empty()) close(c);
}

void Proxy::close(Conn& c) {
    c.client.reset();
    c.upstream.reset();
    c.state = Conn::State::Done;
}

int Proxy::expire() {
    uint64_t now = now_ms();
    int next = -1;
    for (auto& c : conns_) {
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
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(), [](auto& c) { return c->state == Conn::State::Done; }),
                 conns_.end());
    return next;
}

}  // namespace stockade::supervise
