#include "net/allowlist.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace stockade::net {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool valid_name(const std::string& n) {
    if (n.empty() || n.size() > 253 || n.front() == '.' || n.back() == '.' || n.front() == '-') return false;
    return std::all_of(n.begin(), n.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.'; });
}

bool in_prefix(const uint8_t* a, const uint8_t* net, int prefix) {
    int full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a, net, static_cast<size_t>(full)) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

bool port_ok(const Rule& r, uint16_t port) {
    if (r.ports.empty()) return port == 80 || port == 443;
    return std::find(r.ports.begin(), r.ports.end(), port) != r.ports.end();
}

}  // namespace

std::optional<sockaddr_storage> parse_ip(const std::string& s0) {
    std::string s = s0;
    if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    sockaddr_storage ss{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (::inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return ss;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return ss;
    }
    return std::nullopt;
}

std::string to_string(const sockaddr_storage& a) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (a.ss_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
    else if (a.ss_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr, buf, sizeof buf);
    return buf;
}

std::string parse_rule(const std::string& text, Rule& r) {
    r = Rule{};
    r.text = text;
    std::string host = text, port;
    // Port: after the last ':' for names and v4; v6 needs brackets to carry one.
    if (!host.empty() && host.front() == '[') {
        size_t close = host.find(']');
        if (close == std::string::npos) return "expected [IPv6]:port";
        if (close + 1 < host.size()) {
            if (host[close + 1] != ':') return "expected [IPv6]:port";
            port = host.substr(close + 2);
        }
        host = host.substr(1, close - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
        port = host.substr(host.find(':') + 1);
        host = host.substr(0, host.find(':'));
    }
    if (!port.empty()) {
        if (!std::all_of(port.begin(), port.end(), ::isdigit) || port.size() > 5 || std::stoi(port) < 1 ||
            std::stoi(port) > 65535)
            return "expected a port from 1 to 65535, got \"" + port + "\"";
        r.ports.push_back(static_cast<uint16_t>(std::stoi(port)));
    }
    size_t slash = host.find('/');
    if (slash != std::string::npos || parse_ip(host)) {
        std::string ip = host.substr(0, slash);
        auto a = parse_ip(ip);
        if (!a) return "expected an IP address or CIDR range, got \"" + host + "\"";
        int max = a->ss_family == AF_INET ? 32 : 128;
        r.prefix = max;
        if (slash != std::string::npos) {
            std::string p = host.substr(slash + 1);
            if (p.empty() || !std::all_of(p.begin(), p.end(), ::isdigit) || std::stoi(p) > max)
                return "expected a prefix length from 0 to " + std::to_string(max) + ", got \"" + p + "\"";
            r.prefix = std::stoi(p);
        }
        r.kind = Rule::Kind::Cidr;
        r.addr = *a;
        return {};
    }
    host = lower(host);
    if (host.rfind("*.", 0) == 0) {
        r.kind = Rule::Kind::Suffix;
        r.name = host.substr(2);
    } else {
        r.kind = Rule::Kind::Name;
        r.name = host;
    }
    if (!valid_name(r.name))
        return "expected a host name, \"*.\" and a domain, an IP or a CIDR range, got \"" + text + "\"";
    return {};
}

bool Allowlist::allows_name(const std::string& host0, uint16_t port) const {
    std::string host = lower(host0);
    if (!host.empty() && host.back() == '.') host.pop_back();
    for (const auto& r : rules_) {
        if (!port_ok(r, port)) continue;
        if (r.kind == Rule::Kind::Name && host == r.name) return true;
        // "*.example.com" matches a.example.com and a.b.example.com, not example.com.
        if (r.kind == Rule::Kind::Suffix && host.size() > r.name.size() + 1 &&
            host.compare(host.size() - r.name.size(), r.name.size(), r.name) == 0 &&
            host[host.size() - r.name.size() - 1] == '.')
            return true;
        if (r.kind == Rule::Kind::Cidr) {
            auto a = parse_ip(host);
            if (a && lists_address(*a, port)) return true;
        }
    }
    return false;
}

bool Allowlist::lists_address(const sockaddr_storage& a, uint16_t port) const {
    for (const auto& r : rules_) {
        if (r.kind != Rule::Kind::Cidr || !port_ok(r, port) || r.addr.ss_family != a.ss_family) continue;
        const uint8_t *x, *n;
        if (a.ss_family == AF_INET) {
            x = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(&a)->sin_addr);
            n = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(&r.addr)->sin_addr);
        } else {
            x = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr);
            n = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(&r.addr)->sin6_addr);
        }
        if (in_prefix(x, n, r.prefix)) return true;
    }
    return false;
}

bool is_internal(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) {
        uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(&a)->sin_addr.s_addr);
        auto in = [&](uint32_t net, int bits) { return (ip >> (32 - bits)) == (net >> (32 - bits)); };
        return in(0x00000000, 8) ||   // 0.0.0.0/8 "this network"
               in(0x0a000000, 8) ||   // 10/8
               in(0x64400000, 10) ||  // 100.64/10 CGNAT
               in(0x7f000000, 8) ||   // loopback
               in(0xa9fe0000, 16) ||  // link-local, cloud metadata 169.254.169.254
               in(0xac100000, 12) ||  // 172.16/12
               in(0xc0a80000, 16) ||  // 192.168/16
               in(0xc0000000, 24) ||  // 192.0.0/24 protocol assignments
               in(0xc6120000, 15) ||  // 198.18/15 benchmarking
               in(0xe0000000, 4) ||   // multicast
               in(0xf0000000, 4);     // reserved, broadcast
    }
    if (a.ss_family == AF_INET6) {
        const auto& s6 = reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr;
        const uint8_t* b = s6.s6_addr;
        // Ranges that carry an IPv4 address inside are judged by that address:
        // a route to 6to4's or SIIT's embedded address is a route to it.
        auto embedded = [&](size_t at, bool flip) {
            sockaddr_storage v4{};
            auto* p = reinterpret_cast<sockaddr_in*>(&v4);
            p->sin_family = AF_INET;
            uint8_t q[4];
            for (int i = 0; i < 4; ++i) q[i] = flip ? static_cast<uint8_t>(b[at + i] ^ 0xff) : b[at + i];
            std::memcpy(&p->sin_addr, q, 4);
            return is_internal(v4);
        };
        auto zero = [&](size_t from, size_t to) {
            for (size_t i = from; i < to; ++i)
                if (b[i]) return false;
            return true;
        };
        if (IN6_IS_ADDR_V4MAPPED(&s6) || IN6_IS_ADDR_V4COMPAT(&s6)) return embedded(12, false);
        // ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765)
        if (zero(0, 8) && b[8] == 0xff && b[9] == 0xff && zero(10, 12)) return embedded(12, false);
        // 6to4 2002::/16: the relay's IPv4 address is bits 16..47
        if (b[0] == 0x20 && b[1] == 0x02) return embedded(2, false);
        // Teredo 2001::/32: a tunnel whose client address (inverted) and
        // server are both IPv4; nothing public is reached that way on purpose.
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) return true;
        // NAT64, well-known 64:ff9b::/96 and local-use 64:ff9b:1::/48: the
        // translator's network decides where they go.
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return true;
        return IN6_IS_ADDR_UNSPECIFIED(&s6) || IN6_IS_ADDR_LOOPBACK(&s6) || IN6_IS_ADDR_LINKLOCAL(&s6) ||
               IN6_IS_ADDR_SITELOCAL(&s6) || IN6_IS_ADDR_MULTICAST(&s6) || (b[0] & 0xfe) == 0xfc ||  // ULA fc00::/7
               (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8);                       // documentation
    }
    return true;
}

}  // namespace stockade::net
