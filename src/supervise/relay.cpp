#include "supervise/relay.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace stockade::supervise {

OutputRelay::OutputRelay(uint64_t cap, bool relay_out, bool relay_err, bool capture) : cap_(cap), capture_(capture) {
    const bool relay[2] = {relay_out, relay_err};
    for (int i = 0; i < 2; ++i) {
        if (!relay[i]) continue;
        relayed_[i] = true;
        pipes_[i] = make_pipe(i == 0 ? "stdout relay" : "stderr relay");
        // The read end never blocks the supervisor's loop.
        ::fcntl(pipes_[i].read.get(), F_SETFL, O_NONBLOCK);
        // A larger pipe means fewer wake-ups for a chatty program.
        ::fcntl(pipes_[i].write.get(), F_SETPIPE_SZ, 1 << 20);
    }
}

void OutputRelay::close_jail_ends() {
    pipes_[0].write.reset();
    pipes_[1].write.reset();
}

pollfd OutputRelay::poll_for(int stream) const {
    if (blocked_[stream]) return {stream + 1, POLLOUT, 0};
    return {pipes_[stream].read.get(), POLLIN, 0};
}

bool OutputRelay::pump(int stream) {
    blocked_[stream] = false;
    int in = pipes_[stream].read.get();
    int out = stream + 1;
    uint64_t used = bytes_[0] + bytes_[1];
    uint64_t room = used < cap_ ? cap_ - used : 0;
    if (capture_) {
        char buf[65536];
        ssize_t n = ::read(in, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            pipes_[stream].read.reset();
            return false;
        }
        if (n < 0) return true;  // EAGAIN, EINTR: still open
        kept_[stream].append(buf, std::min<uint64_t>(room, static_cast<uint64_t>(n)));
        bytes_[stream] += static_cast<uint64_t>(n);
        return true;
    }
    if (room > 0 && !no_splice_[stream]) {
        ssize_t n =
            ::splice(in, nullptr, out, nullptr, std::min<uint64_t>(room, 1 << 20), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            bytes_[stream] += static_cast<uint64_t>(n);
            return true;
        }
        if (n == 0) {
            pipes_[stream].read.reset();
            return false;
        }
        if (errno == EINTR) return true;
        if (errno == EAGAIN) {
            // Called when the jail's end was readable (or the caller's writable):
            // if there is data, the caller's side is full. Wait for it to drain.
            int avail = 0;
            if (::ioctl(in, FIONREAD, &avail) == 0 && avail > 0) blocked_[stream] = true;
            return true;
        }
        // EINVAL: the caller's fd cannot take splice (O_APPEND, some files); copy instead.
        if (errno != EINVAL) {
            pipes_[stream].read.reset();  // the caller's side is gone (EPIPE): nothing more to deliver
            return false;
        }
        no_splice_[stream] = true;
    }
    char buf[65536];
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        pipes_[stream].read.reset();
        return false;
    }
    if (n < 0) return true;
    uint64_t keep = std::min<uint64_t>(room, static_cast<uint64_t>(n));
    for (uint64_t done = 0; done < keep;) {
        ssize_t w = ::write(out, buf + done, keep - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += static_cast<uint64_t>(w);
    }
    bytes_[stream] += static_cast<uint64_t>(n);  // discarded bytes count too: the result says how much was written
    return true;
}

void OutputRelay::drain(int stream) {
    // Bounded: a writer still inside the jail cannot keep us here.
    for (int i = 0; i < 1024 && relaying(stream); ++i) {
        int avail = 0;
        if (::ioctl(pipes_[stream].read.get(), FIONREAD, &avail) < 0 || avail == 0) break;
        pump(stream);
    }
}

std::string OutputRelay::take(int stream) {
    std::string s;
    s.swap(kept_[stream]);
    return s;
}

}  // namespace stockade::supervise
