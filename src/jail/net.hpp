// Network setup inside the jail's own network namespace.
#pragma once
#include <cstdint>

namespace stockade::jail {

// Brings the namespace's loopback interface up (via rtnetlink); it starts down.
void loopback_up();

// A listening TCP socket on 127.0.0.1:port in the current (the jail's) network
// namespace: connections from the jail to it arrive wherever the fd is.
int proxy_listener(uint16_t port);

}  // namespace stockade::jail
