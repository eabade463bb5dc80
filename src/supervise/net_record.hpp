// One decision of the proxy as the result reports it (plain data, for report/).
#pragma once
#include <cstdint>
#include <string>

namespace stockade::supervise {

struct NetRecord {
    double t_ms = 0;           // since the run began (the first, for merged refusals)
    std::string method, host;  // host: normalized, or \xNN-escaped and cut when it was not a valid name
    uint16_t port = 0;
    bool allowed = false;
    std::string reason;  // why refused, or the address connected to
    uint64_t bytes_up = 0, bytes_down = 0;
    uint64_t count = 1;  // identical refusals are merged into one record
};

}  // namespace stockade::supervise
