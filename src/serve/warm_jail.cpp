#include "serve/warm_jail.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "util/clock.hpp"
#include "util/error.hpp"

namespace stockade::serve {
namespace {
// The longest line the runner may send: a cell's answer with its returned
// files (base64) fits; anything longer is a runner that was tampered with.
constexpr size_t kMaxLine = 48u << 20;
}  // namespace

WarmJail::WarmJail(std::shared_ptr<const JailSpec> spec, supervise::EventLoop& loop)
    : spec_(std::move(spec)), loop_(loop), sup_(spec_->plan, supervise::Supervisor::Options{.capture = true, .warm = true}) {}

WarmJail::~WarmJail() {
    loop_.remove(this);
    sup_.kill();
}

void WarmJail::start() {
    started_ns_ = monotonic_ns();
    sup_.start();
    ::fcntl(sup_.control_fd(), F_SETFL, O_NONBLOCK);
    control_open_ = true;
    loop_.add(this);
}

void WarmJail::dispatch(const nlohmann::json& msg) {
    out_ += msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out_ += '\n';
    if (state_ == State::Ready) state_ = State::Busy;
    write_control();
}

bool WarmJail::pop_reply(nlohmann::json& out) {
    if (replies_.empty()) return false;
    out = std::move(replies_.front());
    replies_.pop_front();
    return true;
}

supervise::Outcome WarmJail::collect() { return sup_.collect(sup_.done()); }

void WarmJail::close_control() {
    control_open_ = false;
    out_.clear();
    out_off_ = 0;
}

void WarmJail::on_line(const std::string& line) {
    nlohmann::json msg = nlohmann::json::parse(line, nullptr, false);
    if (!msg.is_object()) {
        // Not the runner's: a task writing to the socket. Nothing more from it is believed.
        close_control();
        return;
    }
    if (state_ == State::Warming) {
        auto r = msg.find("ready");
        if (r != msg.end() && r->is_boolean() && r->get<bool>()) {
            state_ = State::Ready;
        } else {
            auto e = msg.find("error");
            warmup_error_ = e != msg.end() && e->is_string() ? e->get<std::string>() : "the runner did not start";
            sup_.kill();
        }
        return;
    }
    if (replies_.size() < 16) replies_.push_back(std::move(msg));
}

void WarmJail::read_control() {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(sup_.control_fd(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            close_control();
            return;
        }
        in_.append(buf, static_cast<size_t>(n));
        size_t start = 0;
        for (size_t nl; control_open_ && (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1)
            on_line(in_.substr(start, nl - start));
        in_.erase(0, start);
        if (in_.size() > kMaxLine) close_control();
        if (!control_open_) return;
    }
}

void WarmJail::write_control() {
    while (control_open_ && out_off_ < out_.size()) {
        ssize_t n = ::send(sup_.control_fd(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0) {
            close_control();
            return;
        }
        out_off_ += static_cast<size_t>(n);
    }
    if (out_off_ == out_.size()) {
        out_.clear();
        out_off_ = 0;
    }
}

void WarmJail::fill(std::vector<pollfd>& fds) {
    const size_t before = fds.size();
    if (control_open_)
        fds.push_back({sup_.control_fd(), static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0});
    own_fds_ = fds.size() - before;
    sup_.fill(fds);
}

void WarmJail::handle(const pollfd* fds, size_t n) {
    if (n < own_fds_) return;
    if (own_fds_ && control_open_) {
        if (fds[0].revents & POLLOUT) write_control();
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) read_control();
    }
    sup_.handle(fds + own_fds_, n - own_fds_);
    // Over when the init reports the program's end (everything in the jail
    // is gone by then), or when the jail is gone without a report.
    if ((sup_.done() || (sup_.exited() && state_ != State::Warming)) && state_ != State::Ended) {
        // Whatever the runner still had to say is in the socket now.
        if (control_open_) read_control();
        if (state_ == State::Warming && warmup_error_.empty()) warmup_error_ = "the runner ended before it was ready";
        state_ = State::Ended;
    }
}

}  // namespace stockade::serve
