// The caller's terminal, met by a pseudo-terminal of the jail's own (as
// script(1) and `docker run -t` do it). The supervisor is the only process
// that touches the caller's tty: it relays bytes both ways, forwards the
// window size, reads input only while it is the foreground job, and restores
// the terminal's settings on every way out. The jail never holds the
// caller's tty, so it cannot read what is typed into the shell after a Ctrl-Z,
// nor leave it in exclusive or no-echo mode.
#pragma once
#include <termios.h>

#include <cstdint>
#include <functional>
#include <string>

#include "supervise/escape_filter.hpp"
#include "util/event_loop.hpp"
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

    // Its fds go on the loop; after each of its events, `after(stop)` runs,
    // stop true when the caller's terminal says stop (a read while in the
    // background): the supervisor should suspend as for SIGTTIN.
    void bind(EventLoop& loop, std::function<void(bool stop)> after);

    // Job control, from the supervisor's signal handling.
    void restore();  // the caller's settings back, before stopping
    void resume();   // after SIGCONT: raw again if in the foreground, size synced
    void resize();   // SIGWINCH

    uint64_t bytes() const { return bytes_; }
    uint64_t sequences_dropped() const { return filter_.dropped(); }
    bool over_cap() const { return cap_ && bytes_ > cap_; }

private:
    bool foreground() const;
    void prepare();
    IoWatch watch(int fd, const IoWatch* self);
    bool on_ready(int fd, short events, short revents);

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
    // The master (once attached), the caller's side for output and for input.
    EventLoop* loop_ = nullptr;
    IoWatch master_w_, out_w_, in_w_;
    Hook prepare_;
    std::function<void(bool)> after_;
};

}  // namespace stockade::supervise
