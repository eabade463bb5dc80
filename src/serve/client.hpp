// One client connection of `stockade serve`: JSON lines in, JSON lines out,
// without ever blocking the server. A client that sends an endless line, or
// stops reading its answers, loses its own connection and nobody else's.
#pragma once
#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/event_loop.hpp"
#include "util/fd.hpp"
#include "util/line_buffer.hpp"

namespace stockade::serve {

// The bounds on what one client may make the server hold (serve/limits.cpp
// explains the figures).
constexpr size_t kMaxRequest = 8u << 20;   // one request line
constexpr size_t kMaxUnread = 128u << 20;  // answers it has not read

// An answer line: {"id": ID, ...body}. The id is the request's own JSON text,
// echoed token for token (a 29-digit id comes back as 29 digits, not 1e+29).
std::string answer_line(const std::string& id, const nlohmann::json& body);

class Client {
public:
    using OnLine = std::function<void(Client&, std::string_view)>;
    // On the loop from here until destroyed.
    Client(EventLoop& loop, UniqueFd fd, uint64_t id, uid_t uid, OnLine on_line);

    uint64_t id() const { return id_; }
    uid_t uid() const { return uid_; }
    // Queues one answer or event.
    void send(const std::string& id, const nlohmann::json& body) { send_line(answer_line(id, body)); }
    void send_line(std::string line);
    // Closed by the peer, or dropped for misbehaving (and every answer sent).
    bool gone() const { return gone_ && out_.size() == out_off_; }
    // No more requests are read; what is queued is still written (draining).
    void stop_reading() {
        reading_ = false;
        update();
    }
    // Reading waits while this client's work fills its share (the server's
    // call): the socket's own buffer then pushes back on the client.
    void pause(bool p) {
        paused_ = p;
        update();
    }
    bool has_output() const { return out_off_ < out_.size(); }
    size_t unread() const { return out_.size() - out_off_; }
    // Drops the connection now: nothing more is read or written.
    void drop();

private:
    void on_ready(short revents);
    void read_some();
    void write_some();
    // What to wait for, from the state: called wherever it changes.
    void update();

    UniqueFd fd_;
    uint64_t id_;
    uid_t uid_;
    OnLine on_line_;
    LineBuffer in_{kMaxRequest};
    std::string out_;
    size_t out_off_ = 0;
    bool gone_ = false, reading_ = true, paused_ = false;
    IoWatch watch_;
};

}  // namespace stockade::serve
