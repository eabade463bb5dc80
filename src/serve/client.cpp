#include "serve/client.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace stockade::serve {
namespace {
constexpr size_t kMaxRequest = 64u << 20;   // one request line
constexpr size_t kMaxQueued = 256u << 20;   // answers the client has not read
}  // namespace

void Client::send(const nlohmann::json& msg) {
    if (gone_ && fd_.get() < 0) return;
    out_ += msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out_ += '\n';
    if (out_.size() - out_off_ > kMaxQueued) {
        // It does not read: it is not waiting for anything either.
        gone_ = true;
        out_.clear();
        out_off_ = 0;
        return;
    }
    write_some();
}

void Client::fill(std::vector<pollfd>& fds) {
    short ev = 0;
    if (reading_ && !gone_) ev |= POLLIN;
    if (out_off_ < out_.size()) ev |= POLLOUT;
    fds.push_back({fd_.get(), ev, 0});
}

void Client::handle(const pollfd* fds, size_t n) {
    if (n != 1) return;
    if (fds[0].revents & POLLOUT) write_some();
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (reading_ && !gone_) read_some();
        else if (fds[0].revents & (POLLHUP | POLLERR)) gone_ = true, out_.clear(), out_off_ = 0;
    }
}

void Client::read_some() {
    char buf[65536];
    for (int round = 0; round < 64 && reading_ && !gone_; ++round) {
        ssize_t r = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        if (r <= 0) {
            gone_ = true;
            out_.clear();
            out_off_ = 0;
            return;
        }
        in_.append(buf, static_cast<size_t>(r));
        size_t start = 0;
        for (size_t nl; !gone_ && (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string line = in_.substr(start, nl - start);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) on_line_(*this, line);
        }
        in_.erase(0, start);
        if (in_.size() > kMaxRequest) {
            send({{"id", nullptr},
                  {"error", {{"code", "bad_request"}, {"message", "request line longer than 64 MiB; connection closed"}}}});
            reading_ = false;
            gone_ = true;  // after the answer is written
            return;
        }
    }
}

void Client::write_some() {
    while (out_off_ < out_.size()) {
        ssize_t w = ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return;
        if (w < 0) {
            gone_ = true;
            out_.clear();
            out_off_ = 0;
            return;
        }
        out_off_ += static_cast<size_t>(w);
    }
    out_.clear();
    out_off_ = 0;
}

}  // namespace stockade::serve
