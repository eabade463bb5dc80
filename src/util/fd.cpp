#include "util/fd.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

#include "util/error.hpp"

namespace stockade {

Pipe make_pipe(const char* what) {
    int p[2];
    check(::pipe2(p, O_CLOEXEC), "pipe2", what);
    return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
}

std::string read_small_file(const std::string& path, size_t max) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::string out;
    if (!fd) return out;
    char buf[8192];
    while (out.size() < max) {
        ssize_t n = ::read(fd.get(), buf, std::min(sizeof buf, max - out.size()));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

void write_all(int fd, const void* buf, size_t len, const char* what) {
    auto* p = static_cast<const char*>(buf);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_sys("write", what);
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
}

}  // namespace stockade
