// What a jail prints to the caller's terminal, with what it must not say to
// that terminal taken out. A terminal obeys what it reads: OSC 52 reads or
// sets the clipboard (paste-jacking), OSC 0/1/2 set the title, DCS and the
// query sequences (DA, DSR/CPR, XTVERSION, DECRQM, window reports, ENQ, DECID)
// make the terminal type an answer, which the jail then reads as input, or
// which lands in the caller's shell after the jail has exited. Mouse and
// focus reporting modes would do the same with every click. Colour (SGR),
// cursor movement, erasing, scrolling regions and the alternate screen pass.
//
// A state machine over the byte stream (after ECMA-48 and xterm's
// ctlseqs): sequences split across reads are held until complete, and a
// sequence is passed or dropped whole. C1 controls (U+0080..U+009F, which
// xterm obeys as 8-bit CSI, OSC, DCS...) are dropped.
#pragma once
#include <cstdint>
#include <string>

namespace stockade::supervise {

class EscapeFilter {
public:
    // Appends to `out` what of [p, p+n) may reach the terminal.
    void feed(const char* p, size_t n, std::string& out);
    // Sequences dropped so far.
    uint64_t dropped() const { return dropped_; }

private:
    enum class State { Ground, Esc, EscInter, Csi, String, StringEsc, StringC2, C2 };
    void csi_done(std::string& out);

    State state_ = State::Ground;
    std::string seq_;
    bool drop_string_ = true;
    uint64_t dropped_ = 0;
};

}  // namespace stockade::supervise
