// The output cap: when the profile limits output, the jail's stdout and stderr
// are pipes that the supervisor moves to the caller's with splice(2), counting
// bytes, and past the cap discards (or, by profile choice, ends the jail).
// Without a cap, or for a terminal, the program writes to the caller's fds
// directly and nothing here runs.
#pragma once
#include <poll.h>

#include <cstdint>
#include <string>

#include "util/fd.hpp"

namespace stockade::supervise {

class OutputRelay {
public:
    // relay[i] for stdout (0) and stderr (1); cap in bytes for both together.
    // With capture (serve), both streams are kept in memory, up to the cap,
    // for the server to take, instead of going to our own fds 1 and 2.
    OutputRelay(uint64_t cap, bool relay_out, bool relay_err, bool capture = false);

    // Write end to hand the jail for fd 1 or 2, or -1 to pass the caller's through.
    int jail_end(int stream) const { return pipes_[stream].write.get(); }
    void close_jail_ends();

    // Moves what is readable on `stream` on; false once that stream hit EOF.
    bool pump(int stream);
    bool over_cap() const { return bytes_[0] + bytes_[1] > cap_; }
    // Capture: reads until the pipe is empty (the writer has said it is done).
    void drain(int stream);
    // Capture: what the stream wrote since the last take; the counts start
    // again, so each session cell has the whole cap.
    std::string take(int stream);
    void new_window() { bytes_[0] = bytes_[1] = 0; }

    uint64_t bytes(int stream) const { return bytes_[stream]; }
    bool relaying(int stream) const { return static_cast<bool>(pipes_[stream].read); }
    // Whether this stream goes through the relay at all (its bytes are counted).
    bool relayed(int stream) const { return relayed_[stream]; }
    // What to poll for this stream: the jail's end for POLLIN, or, while the
    // caller's side is full, the caller's fd for POLLOUT (never both, so a
    // reader that stops reading costs the supervisor no CPU).
    pollfd poll_for(int stream) const;

private:
    uint64_t cap_;
    Pipe pipes_[2];
    uint64_t bytes_[2] = {0, 0};
    bool no_splice_[2] = {false, false};
    bool blocked_[2] = {false, false};
    bool relayed_[2] = {false, false};
    bool capture_ = false;
    std::string kept_[2];
};

}  // namespace stockade::supervise
