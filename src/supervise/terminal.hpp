// The caller's terminal, met by a pseudo-terminal of the jail's own (as
// script(1) and `docker run -t` do it). The supervisor is the only process
// that touches the caller's tty: it relays bytes both ways, forwards the
// window size, reads input only while it is the foreground job, and restores
// the terminal's settings on every way out. The jail never holds the
// caller's tty, so it cannot read what is typed into the shell after a Ctrl-Z,
// nor leave it in exclusive or no-echo mode.
#pragma once
#include <poll.h>
#include <termios.h>

#include <cstdint>
#include <string>
#include <vector>

#include "supervise/escape_filter.hpp"
#include "util/fd.hpp"

namespace stockade::supervise {

class TerminalRelay {
public:
    // terminal: bit i set when the caller's fd i is a terminal; cap: output
    // bytes delivered before the rest is discarded (0: no cap); raw: pass
    // every escape sequence (the caller's opt-in, --raw-terminal), else the
    // output goes through EscapeFilter.
    TerminalRelay(unsigned terminal, uint64_t cap, bool raw = false);
    ~TerminalRelay();
    TerminalRelay(const TerminalRelay&) = delete;
    TerminalRelay& operator=(const TerminalRelay&) = delete;

    bool wanted() const { return terminal_ != 0; }
    // The jail's master arrives (over the report socket); ownership taken.
    void attach(int master);
    bool relaying() const;

    void fill(std::vector<pollfd>& fds) const;
    // Returns true when the caller's terminal says stop (a read while in the
    // background): the supervisor should suspend as for SIGTTIN.
    bool handle(const pollfd& p);

    // Job control, from the supervisor's signal handling.
    void restore();  // the caller's settings back, before stopping
    void resume();   // after SIGCONT: raw again if in the foreground, size synced
    void resize();   // SIGWINCH

    uint64_t bytes() const { return bytes_; }
    uint64_t sequences_dropped() const { return filter_.dropped(); }
    bool over_cap() const { return cap_ && bytes_ > cap_; }

private:
    bool foreground() const;
    bool owns(int fd) const;

    unsigned terminal_;
    uint64_t cap_;
    bool raw_output_;
    EscapeFilter filter_;
    int in_ = -1, out_ = -1;  // the caller's terminal fds we read from / write to
    UniqueFd master_;
    struct termios saved_ {};
    bool have_saved_ = false, raw_ = false, in_eof_ = false;
    std::string to_caller_, to_jail_;
    uint64_t bytes_ = 0;
};

}  // namespace stockade::supervise
