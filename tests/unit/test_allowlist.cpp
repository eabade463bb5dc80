#include <doctest/doctest.h>

#include "net/allowlist.hpp"

using namespace stockade::net;

namespace {
Allowlist list(std::initializer_list<const char*> texts) {
    std::vector<Rule> rules;
    for (const char* t : texts) {
        Rule r;
        REQUIRE(parse_rule(t, r).empty());
        rules.push_back(r);
    }
    return Allowlist(rules);
}
sockaddr_storage ip(const char* s) { return *parse_ip(s); }
}  // namespace

TEST_CASE("allow rules: names, suffixes, ports") {
    Allowlist a = list({"pypi.org:443", "*.pythonhosted.org", "api.example.com"});
    CHECK(a.allows_name("pypi.org", 443));
    CHECK(a.allows_name("PyPI.org.", 443));
    CHECK_FALSE(a.allows_name("pypi.org", 80));
    CHECK(a.allows_name("files.pythonhosted.org", 443));
    CHECK(a.allows_name("a.b.pythonhosted.org", 80));
    CHECK_FALSE(a.allows_name("pythonhosted.org", 443));       // the suffix, not the apex
    CHECK_FALSE(a.allows_name("evilpythonhosted.org", 443));   // a label boundary, not a substring
    CHECK(a.allows_name("api.example.com", 80));
    CHECK_FALSE(a.allows_name("api.example.com", 8080));
    CHECK_FALSE(a.allows_name("example.com", 443));
}

TEST_CASE("allow rules: IPs and ranges, v4 and v6") {
    Allowlist a = list({"10.0.0.0/8:8080", "127.0.0.1:9000", "[::1]:9000", "2001:db8::/32"});
    CHECK(a.lists_address(ip("10.1.2.3"), 8080));
    CHECK_FALSE(a.lists_address(ip("10.1.2.3"), 80));
    CHECK_FALSE(a.lists_address(ip("11.0.0.1"), 8080));
    CHECK(a.lists_address(ip("127.0.0.1"), 9000));
    CHECK(a.lists_address(ip("::1"), 9000));
    CHECK(a.lists_address(ip("2001:db8::5"), 443));
    CHECK(a.allows_name("10.9.9.9", 8080));  // an IP literal asked by name matches by address
    Rule r;
    CHECK_FALSE(parse_rule("bad host!", r).empty());
    CHECK_FALSE(parse_rule("example.com:99999", r).empty());
    CHECK_FALSE(parse_rule("10.0.0.0/33", r).empty());
    CHECK_FALSE(parse_rule("[::1", r).empty());
}

TEST_CASE("internal addresses are refused unless listed by address") {
    for (const char* s : {"127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0",
                          "224.0.0.1", "100.64.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
                          "::ffff:169.254.169.254", "ff02::1",
                          // ranges that embed or route to an IPv4 address: 6to4 of 127.0.0.1 and of the
                          // metadata address, SIIT's IPv4-translated 127.0.0.1, Teredo, NAT64 local use
                          "2002:7f00:1::1", "2002:a9fe:a9fe::", "::ffff:0:7f00:1", "::ffff:0:a00:1",
                          "2001:0:4136:e378:8000:63bf:80ff:fffe", "64:ff9b:1::a00:1", "64:ff9b::a9fe:a9fe"})
        CHECK_MESSAGE(is_internal(ip(s)), s);
    for (const char* s : {"93.184.216.34", "151.101.0.223", "2a04:4e42::223", "::ffff:8.8.8.8",
                          "2002:5db8:d822::1", "::ffff:0:808:808"})
        CHECK_FALSE_MESSAGE(is_internal(ip(s)), s);
}
