// Socket families: the one table that the profile's names, the filter, the
// reports and explain all read.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace stockade::seccomp {

struct Family {
    const char* name;   // as a profile names it ("" for ones a profile cannot ask for)
    const char* macro;  // as a report shows it
    int number;
    bool core;  // refused by the hard-deny core in every profile
};

inline constexpr Family kFamilies[] = {
    {"unix", "AF_UNIX", AF_UNIX, false},      {"inet", "AF_INET", AF_INET, false},
    {"inet6", "AF_INET6", AF_INET6, false},   {"key", "AF_KEY", AF_KEY, false},
    {"rds", "AF_RDS", AF_RDS, false},         {"can", "AF_CAN", AF_CAN, false},
    {"tipc", "AF_TIPC", AF_TIPC, false},      {"bluetooth", "AF_BLUETOOTH", AF_BLUETOOTH, false},
    {"alg", "AF_ALG", AF_ALG, false},         {"netlink", "AF_NETLINK", AF_NETLINK, true},
    {"packet", "AF_PACKET", AF_PACKET, true}, {"vsock", "AF_VSOCK", 40, true},
};

inline const Family* family_by_number(uint64_t n) {
    for (const auto& f : kFamilies)
        if (static_cast<uint64_t>(f.number) == (n & 0xffffffffu)) return &f;
    return nullptr;
}

inline const Family* family_by_name(const std::string& name) {
    for (const auto& f : kFamilies)
        if (name == f.name) return &f;
    return nullptr;
}

}  // namespace stockade::seccomp
