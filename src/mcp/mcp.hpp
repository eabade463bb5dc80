// `stockade mcp`: a Model Context Protocol server over stdio (JSON-RPC 2.0,
// one message per line; stdout carries protocol messages only, logs go to
// stderr; it ends when stdin closes and the calls in flight are answered, or on
// SIGTERM). Its jails are those of a private
// `stockade serve` (see backend.hpp); its configuration is the operator's
// command line, never the model's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace stockade::mcp {

struct McpOptions {
    std::vector<std::string> serve_args;     // passed to each `stockade serve`
    std::vector<std::string> network_modes;  // allowed; the first is the default
    uint64_t wall_ms = 0;                    // the profile's time limit, shown to the model
};

int run(const McpOptions& opt);

}  // namespace stockade::mcp
