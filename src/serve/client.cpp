#include "serve/client.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "util/json_out.hpp"

namespace stockade::serve {

std::string answer_line(const std::string& id, const nlohmann::json& body) {
    std::string rest = body.is_object() && !body.empty() ? dump_json(body) : std::string("{}");
    std::string line;
    line.reserve(rest.size() + id.size() + 8);
    line += "{\"id\":";
    line += id.empty() ? "null" : id;
    if (rest.size() > 2) {
        line += ',';
        line.append(rest, 1, std::string::npos);
    } else {
        line += '}';
    }
    line += '\n';
    return line;
}

Client::Client(EventLoop& loop, UniqueFd fd, uint64_t id, uid_t uid, OnLine on_line)
    : fd_(std::move(fd)),
      id_(id),
      uid_(uid),
      on_line_(std::move(on_line)),
      watch_(loop, fd_.get(), POLLIN, [this](short revents) { on_ready(revents); }) {}

void Client::update() {
    short ev = 0;
    if (reading_ && !gone_ && !paused_) ev |= POLLIN;
    if (out_off_ < out_.size()) ev |= POLLOUT;
    // Nothing asked: still watched for the hang-up, which poll reports whatever is asked.
    watch_.set_events(ev ? ev : static_cast<short>(POLLHUP));
}

void Client::drop() {
    gone_ = true;
    reading_ = false;
    out_.clear();
    out_off_ = 0;
    in_.clear();
    update();
}

void Client::send_line(std::string line) {
    if (gone_) return;
    if (out_.empty())
        out_ = std::move(line);
    else
        out_ += line;
    if (out_.size() - out_off_ > kMaxUnread) {
        // It does not read: it is not waiting for anything either.
        drop();
        return;
    }
    write_some();
}

void Client::on_ready(short revents) {
    if (revents & POLLOUT) write_some();
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        if (reading_ && !gone_ && !paused_)
            read_some();
        else if (revents & (POLLHUP | POLLERR))
            drop();
    }
    update();
}

void Client::read_some() {
    char buf[65536];
    // A bounded share of the loop per round: at most 1 MiB read here, then
    // the others have their turn.
    for (int round = 0; round < 16 && reading_ && !gone_ && !paused_; ++round) {
        ssize_t r = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        if (r <= 0) {
            drop();
            return;
        }
        in_.append(buf, static_cast<size_t>(r));
        in_.lines([&](std::string_view line) {
            on_line_(*this, line);
            return !gone_ && !paused_;
        });
        if (in_.over()) {
            send(std::string(), {{"error",
                                  {{"code", "too_large"},
                                   {"message", "request line longer than " + std::to_string(kMaxRequest >> 20) +
                                                   " MiB; connection closed (bind large inputs with --ro)"}}}});
            reading_ = false;
            gone_ = true;  // after the answer is written
            in_.clear();
            return;
        }
    }
}

void Client::write_some() {
    while (out_off_ < out_.size()) {
        ssize_t w = ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        if (w < 0) {
            drop();
            return;
        }
        out_off_ += static_cast<size_t>(w);
    }
    if (out_off_ == out_.size()) {
        // An idle client keeps no room for an answer of tens of MiB it read.
        if (out_.capacity() > (1u << 20))
            std::string().swap(out_);
        else
            out_.clear();
        out_off_ = 0;
    } else if (out_off_ > (1u << 20) && out_off_ * 2 > out_.size()) {
        out_.erase(0, out_off_);  // what was written is not kept
        out_off_ = 0;
    }
    update();
}

}  // namespace stockade::serve
