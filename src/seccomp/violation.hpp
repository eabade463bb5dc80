// One refused syscall as the result reports it (plain data, for report/).
#pragma once
#include <string>

namespace stockade::seccomp {

struct Violation {
    int nr = 0;
    std::string name;
    std::string call;  // "socket(AF_NETLINK, SOCK_RAW, 0)"
    int err = 0;       // what the caller got
    bool core = false;
    bool killed = false;
    unsigned count = 0;
};

}  // namespace stockade::seccomp
