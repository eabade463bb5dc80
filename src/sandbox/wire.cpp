#include "sandbox/wire.hpp"

#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace stockade::sandbox {

uint64_t monotonic_ns() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void send(int fd, const WireMsg& m) noexcept {
    ssize_t n;
    do n = ::write(fd, &m, sizeof m);
    while (n < 0 && errno == EINTR);
}

void phase(int fd, bool enabled, const char* name) noexcept {
    if (!enabled) return;
    WireMsg m;
    m.type = WireMsg::Phase;
    m.t_ns = monotonic_ns();
    std::strncpy(m.text, name, sizeof m.text - 1);
    send(fd, m);
}

}  // namespace stockade::sandbox
