#include "util/stdio.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace stockade {

void ensure_stdio_open() {
    for (int fd = 0; fd < 3; ++fd) {
        if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        int n = ::open("/dev/null", O_RDWR);
        if (n >= 0 && n != fd) {
            ::dup2(n, fd);
            ::close(n);
        }
    }
}

void close_inherited_fds(int keep) {
    if (keep < 3) {
        ::close_range(3, ~0U, 0);
        return;
    }
    if (keep > 3) ::close_range(3, static_cast<unsigned>(keep) - 1, 0);
    ::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
    ::fcntl(keep, F_SETFD, FD_CLOEXEC);
}

}  // namespace stockade
