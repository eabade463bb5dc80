// Which destinations the proxy may reach: names (exact or "*." suffix), IP
// literals and CIDR ranges, each with an optional port (default 80 and 443).
// Pure: parsed from the profile, checked per request, unit-tested.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace stockade::net {

struct Rule {
    enum class Kind { Name, Suffix, Cidr } kind = Kind::Name;
    std::string name;             // lower case; for Suffix without the "*."
    sockaddr_storage addr{};      // Cidr: network address (v4 or v6)
    int prefix = 0;               // Cidr: prefix length
    std::vector<uint16_t> ports;  // empty: 80 and 443
    std::string text;             // as written
};

// "pypi.org:443", "*.pythonhosted.org", "10.0.0.0/8", "127.0.0.1:8080", "[::1]:443".
// Returns an error message, or "" and fills rule.
std::string parse_rule(const std::string& text, Rule& rule);

class Allowlist {
public:
    Allowlist() = default;
    explicit Allowlist(std::vector<Rule> rules) : rules_(std::move(rules)) {}
    // Is the name (as asked, before resolution) allowed on this port?
    bool allows_name(const std::string& host, uint16_t port) const;
    // Is this address listed itself (by IP or range), on this port?
    bool lists_address(const sockaddr_storage& a, uint16_t port) const;
    bool empty() const { return rules_.empty(); }
    const std::vector<Rule>& rules() const { return rules_; }

private:
    std::vector<Rule> rules_;
};

// Loopback, private, link-local (169.254.169.254 too), multicast, unspecified,
// CGNAT, ULA, v4-mapped versions of those: nowhere a proxy for untrusted code
// should go unless told to by address.
bool is_internal(const sockaddr_storage& a);

// Parses an IPv4 or IPv6 literal ("[...]" allowed).
std::optional<sockaddr_storage> parse_ip(const std::string& s);
std::string to_string(const sockaddr_storage& a);

}  // namespace stockade::net
