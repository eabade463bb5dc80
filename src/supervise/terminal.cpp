#include "supervise/terminal.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace stockade::supervise {
namespace {
constexpr size_t kBuf = 65536;
}

TerminalRelay::TerminalRelay(unsigned terminal, uint64_t cap, bool raw)
    : terminal_(terminal), cap_(cap), raw_output_(raw) {
    if (terminal_ & 1u) in_ = 0;
    // Output (and the echo of input) goes to the first terminal among stdout,
    // stderr and stdin: a shell opens its terminal read-write.
    out_ = (terminal_ & 2u) ? 1 : (terminal_ & 4u) ? 2 : in_;
    const int any = in_ >= 0 ? in_ : out_;
    if (any >= 0 && ::tcgetattr(any, &saved_) == 0) have_saved_ = true;
}

TerminalRelay::~TerminalRelay() { restore(); }

bool TerminalRelay::foreground() const {
    // Not our controlling terminal (ENOTTY): no job control applies to us.
    pid_t pg = ::tcgetpgrp(in_ >= 0 ? in_ : out_);
    return pg < 0 || pg == ::getpgrp();
}

void TerminalRelay::attach(int master) {
    master_ = UniqueFd(master);
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    // The jail's terminal starts with the caller's settings (erase, intr, ...).
    if (have_saved_) ::tcsetattr(master, TCSANOW, &saved_);
    resume();
}

void TerminalRelay::resume() {
    resize();
    // Raw on the caller's side, but with ISIG kept: Ctrl-C and Ctrl-Z signal
    // stockade, which passes SIGINT in and suspends the jail with itself.
    // Only in the foreground: a background job must not change the terminal.
    if (in_ < 0 || !have_saved_ || raw_ || !foreground()) return;
    struct termios t = saved_;
    t.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | IEXTEN);
    t.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (::tcsetattr(in_, TCSADRAIN, &t) == 0) raw_ = true;
}

void TerminalRelay::restore() {
    if (!raw_) return;
    ::tcsetattr(in_, TCSADRAIN, &saved_);
    raw_ = false;
}

void TerminalRelay::resize() {
    if (!master_) return;
    struct winsize ws {};
    const int from = out_ >= 0 ? out_ : in_;
    if (from >= 0 && ::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(master_.get(), TIOCSWINSZ, &ws);
}

bool TerminalRelay::relaying() const { return static_cast<bool>(master_) || (!to_caller_.empty() && out_ >= 0); }

void TerminalRelay::fill(std::vector<pollfd>& fds) const {
    if (master_) {
        short ev = 0;
        if (to_caller_.size() < kBuf) ev |= POLLIN;
        if (!to_jail_.empty()) ev |= POLLOUT;
        if (ev) fds.push_back({master_.get(), ev, 0});
    }
    if (out_ >= 0 && !to_caller_.empty()) fds.push_back({out_, POLLOUT, 0});
    // Input only while we are the terminal's foreground job; in the background
    // the shell owns what is typed.
    if (master_ && in_ >= 0 && !in_eof_ && to_jail_.size() < kBuf && foreground()) fds.push_back({in_, POLLIN, 0});
}

bool TerminalRelay::owns(int fd) const { return (master_ && fd == master_.get()) || fd == in_ || fd == out_; }

bool TerminalRelay::handle(const pollfd& p) {
    if (!p.revents || !owns(p.fd)) return false;
    char buf[16384];
    bool stop = false;
    if (master_ && p.fd == master_.get() && p.events) {
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::read(master_.get(), buf, sizeof buf);
            if (n > 0) {
                uint64_t room = !cap_ ? UINT64_MAX : bytes_ < cap_ ? cap_ - bytes_ : 0;
                const size_t take = static_cast<size_t>(std::min<uint64_t>(room, static_cast<uint64_t>(n)));
                if (raw_output_)
                    to_caller_.append(buf, take);
                else
                    filter_.feed(buf, take, to_caller_);
                bytes_ += static_cast<uint64_t>(n);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                master_.reset();  // EIO: every slave is closed, the jail is done with it
            }
        }
        if (master_ && (p.revents & POLLOUT) && !to_jail_.empty()) {
            ssize_t n = ::write(master_.get(), to_jail_.data(), to_jail_.size());
            if (n > 0) to_jail_.erase(0, static_cast<size_t>(n));
        }
    }
    if (p.fd == out_ && (p.events & POLLOUT) && (p.revents & (POLLOUT | POLLERR | POLLHUP)) && !to_caller_.empty()) {
        ssize_t n = ::write(out_, to_caller_.data(), std::min<size_t>(to_caller_.size(), 4096));
        if (n > 0)
            to_caller_.erase(0, static_cast<size_t>(n));
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            to_caller_.clear();  // the terminal is gone
    }
    if (p.fd == in_ && (p.events & POLLIN) && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::read(in_, buf, sizeof buf);
        if (n > 0)
            to_jail_.append(buf, static_cast<size_t>(n));
        else if (n == 0)
            in_eof_ = true;
        else if (errno == EIO)
            stop = true;  // read from the background: stop, as SIGTTIN would
        else if (errno != EAGAIN && errno != EINTR)
            in_eof_ = true;
    }
    return stop;
}

}  // namespace stockade::supervise
