#include "util/stdio.hpp"

#include <fcntl.h>

#include <algorithm>
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

void close_inherited_fds(const std::vector<int>& keep) {
    unsigned from = 3;
    std::vector<int> sorted = keep;
    std::sort(sorted.begin(), sorted.end());
    for (int k : sorted) {
        if (k < static_cast<int>(from)) continue;
        if (static_cast<unsigned>(k) > from) ::close_range(from, static_cast<unsigned>(k) - 1, 0);
        ::fcntl(k, F_SETFD, FD_CLOEXEC);
        from = static_cast<unsigned>(k) + 1;
    }
    ::close_range(from, ~0U, 0);
}

}  // namespace stockade
