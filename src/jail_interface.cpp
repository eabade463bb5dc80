#include "jail_interface.hpp"
#include "util/clock.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace stockade::jail {

void send(int fd, const WireMsg& m, const int* fds, int nfds) noexcept {
    struct iovec iov {
        const_cast<WireMsg*>(&m), sizeof m
    };
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    if (nfds > 0 && nfds <= 4) {
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(static_cast<size_t>(nfds) * sizeof(int));
        struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(static_cast<size_t>(nfds) * sizeof(int));
        std::memcpy(CMSG_DATA(c), fds, static_cast<size_t>(nfds) * sizeof(int));
    }
    ssize_t n;
    do n = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
}

bool receive(int fd, WireMsg& m, int* fds, int max_fds, int* nfds) {
    struct iovec iov {
        &m, sizeof m
    };
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    *nfds = 0;
    ssize_t n;
    do n = ::recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[4];
        std::memcpy(got, CMSG_DATA(c), static_cast<size_t>(std::min(count, 4)) * sizeof(int));
        for (int i = 0; i < count && i < 4; ++i) {
            if (*nfds < max_fds)
                fds[(*nfds)++] = got[i];
            else
                ::close(got[i]);
        }
    }
    if (n != static_cast<ssize_t>(sizeof m)) return false;
    m.text[sizeof m.text - 1] = '\0';
    return true;
}

void phase(int fd, bool enabled, const char* name) noexcept {
    if (!enabled) return;
    WireMsg m;
    m.type = WireMsg::Phase;
    m.t_ns = monotonic_ns();
    std::strncpy(m.text, name, sizeof m.text - 1);
    send(fd, m);
}

void fail(int fd, WireMsg::Type type, int err, const std::string& text, int code) noexcept {
    WireMsg m;
    m.type = type;
    m.err = err;
    m.set_text(text);
    send(fd, m);
    ::_exit(code);
}

}  // namespace stockade::jail
