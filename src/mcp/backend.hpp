// The jails behind `stockade mcp`: a `stockade serve` of its own per network
// mode the operator allows, as a child process on a private socket (mode
// 0700 directory), killed with us (parent-death signal) and on every exit
// path. The MCP side speaks the serve protocol to it as any client would, so
// the jails and their pools are exactly serve's.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "util/fd.hpp"

namespace stockade::mcp {

class Backend {
public:
    // serve_args: what follows `stockade serve` for every child (profile,
    // binds, limits, pool); modes: network modes, the first the default.
    Backend(const std::vector<std::string>& serve_args, const std::vector<std::string>& modes);
    ~Backend();
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    // Waits until every child answers on its socket; throws Error.
    void wait_ready(int timeout_ms);
    // A new connection to the server for this network mode (non-blocking).
    UniqueFd connect(const std::string& mode) const;
    const std::vector<std::string>& modes() const { return modes_; }
    // The private directory (0700) of the sockets; also mcp's scratch.
    const std::string& dir() const { return dir_; }
    // A child that has ended (its pid), or -1.
    pid_t ended() const;

private:
    void stop();
    bool answers(const std::string& mode, uint64_t until) const;

    std::string dir_;
    std::vector<std::string> modes_;
    std::map<std::string, std::pair<pid_t, std::string>> children_;  // mode -> (pid, socket)
};

}  // namespace stockade::mcp
