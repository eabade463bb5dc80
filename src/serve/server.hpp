// `stockade serve`: one process, one event loop, many jails. Warm jails wait
// in a pool for one task each; sessions keep one jail across calls; clients
// speak JSON lines on a Unix socket only their own uid (or those allowed)
// can use. The protocol is in man/stockade-serve.1.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "profile/loader.hpp"

namespace stockade::serve {

struct ServeOptions {
    std::string socket;    // empty: default_socket_path()
    size_t pool = 2;       // warm jails kept ready
    std::string preload;   // modules the warm jails import, comma-separated
    size_t max_jails = 8;  // every jail alive at once: warm, busy, sessions
    size_t max_sessions = 4;
    std::vector<uid_t> allow_uids;  // besides our own uid
    std::vector<gid_t> allow_gids;
    uint64_t idle_timeout_ms = 600000;  // a session unused this long is closed
    bool templates = true;              // pool jails forked from a template (serve/pool.hpp)
};

// $XDG_RUNTIME_DIR/stockade/serve.sock, or /run/stockade/serve.sock for root.
std::string default_socket_path();

// Runs the server until SIGTERM (or SIGINT) has drained it. Throws Error
// (or ProfileError) when it cannot start.
int serve(const profile::CommandLine& cl, const ServeOptions& opt, char** envp);

// `serve --check`: whether a server answers on the socket; prints its stats.
// 0: healthy; 1: none or not answering.
int check_server(const std::string& socket);

}  // namespace stockade::serve
