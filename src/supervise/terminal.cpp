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
    master_w_.reset();
    master_ = UniqueFd(master);
    if (loop_) master_w_ = watch(master, &master_w_);
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

void TerminalRelay::bind(EventLoop& loop, std::function<void(bool stop)> after) {
    loop_ = &loop;
    after_ = std::move(after);
    // One watch per fd: when stdin is also where output goes, its watch
    // carries both directions.
    if (out_ >= 0) out_w_ = watch(out_, &out_w_);
    if (in_ >= 0 && in_ != out_) in_w_ = watch(in_, &in_w_);
    if (master_) master_w_ = watch(master_.get(), &master_w_);
    prepare_ = Hook(loop, Hook::When::Prepare, [this] { prepare(); });
}

IoWatch TerminalRelay::watch(int fd, const IoWatch* self) {
    return IoWatch(*loop_, fd, 0, [this, fd, self](short revents) { after_(on_ready(fd, self->events(), revents)); });
}

// Recomputed before every poll: whether we are the foreground job changes
// without an event on any fd.
void TerminalRelay::prepare() {
    short master_ev = 0;
    if (master_) {
        if (to_caller_.size() < kBuf) master_ev |= POLLIN;
        if (!to_jail_.empty()) master_ev |= POLLOUT;
    }
    master_w_.set_events(master_ev);
    short out_ev = out_ >= 0 && !to_caller_.empty() ? POLLOUT : 0;
    // Input only while we are the terminal's foreground job; in the background
    // the shell owns what is typed.
    short in_ev = master_ && in_ >= 0 && !in_eof_ && to_jail_.size() < kBuf && foreground() ? POLLIN : 0;
    if (in_ == out_ && in_ >= 0) {
        out_w_.set_events(static_cast<short>(out_ev | in_ev));
    } else {
        out_w_.set_events(out_ev);
        in_w_.set_events(in_ev);
    }
}

bool TerminalRelay::on_ready(int fd, short events, short revents) {
    const struct pollfd p { fd, events, revents };
    if (!p.revents || !p.events) return false;
    char buf[16384];
    bool stop = false;
    if (master_ && p.fd == master_.get()) {
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
                master_w_.reset();
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
