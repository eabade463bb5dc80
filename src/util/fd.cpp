#include "util/fd.hpp"

#include <fcntl.h>

#include <cerrno>

#include "util/error.hpp"

namespace stockade {

Pipe make_pipe(const char* what) {
    int p[2];
    check(::pipe2(p, O_CLOEXEC), "pipe2", what);
    return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
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
