// One client connection of `stockade serve`: JSON lines in, JSON lines out,
// without ever blocking the server. A client that sends an endless line, or
// stops reading its answers, loses its own connection and nobody else's.
#pragma once
#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>

#include "supervise/event_loop.hpp"
#include "util/fd.hpp"

namespace stockade::serve {

class Client : public supervise::Source {
public:
    using OnLine = std::function<void(Client&, const std::string&)>;
    Client(UniqueFd fd, uint64_t id, uid_t uid, OnLine on_line)
        : fd_(std::move(fd)), id_(id), uid_(uid), on_line_(std::move(on_line)) {}

    uint64_t id() const { return id_; }
    uid_t uid() const { return uid_; }
    // Queues one answer or event (a line).
    void send(const nlohmann::json& msg);
    // Closed by the peer, or dropped for misbehaving (and every answer sent).
    bool gone() const { return gone_ && out_.size() == out_off_; }
    // No more requests are read; what is queued is still written (draining).
    void stop_reading() { reading_ = false; }
    bool has_output() const { return out_off_ < out_.size(); }

    void fill(std::vector<pollfd>& fds) override;
    void handle(const pollfd* fds, size_t n) override;

private:
    void read_some();
    void write_some();

    UniqueFd fd_;
    uint64_t id_;
    uid_t uid_;
    OnLine on_line_;
    std::string in_, out_;
    size_t out_off_ = 0;
    bool gone_ = false, reading_ = true;
};

}  // namespace stockade::serve
