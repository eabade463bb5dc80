#include "supervise/escape_filter.hpp"

#include <cstdlib>

namespace stockade::supervise {
namespace {

constexpr char ESC = 0x1b;
constexpr size_t kMaxSeq = 256;  // a longer CSI is not a real one: dropped

// Private modes that make the terminal send input of its own: X10 and the
// mouse tracking modes, focus events, and their encodings.
bool reporting_mode(const std::string& params) {
    if (params.empty() || params[0] != '?') return false;
    size_t i = 1;
    while (i < params.size()) {
        size_t j = params.find(';', i);
        if (j == std::string::npos) j = params.size();
        int mode = std::atoi(params.substr(i, j - i).c_str());
        if (mode == 9 || (mode >= 1000 && mode <= 1006) || mode == 1015 || mode == 1016) return true;
        i = j + 1;
    }
    return false;
}

}  // namespace

void EscapeFilter::csi_done(std::string& out) {
    // seq_ is ESC [ params intermediates final.
    const char final = seq_.back();
    const std::string body = seq_.substr(2, seq_.size() - 3);
    const char lead = body.empty() ? 0 : body[0];
    bool drop = false;
    switch (final) {
        case 'c':
            drop = true;
            break;  // DA1, DA2 (>), DA3 (=): identify yourself
        case 'n':
            drop = true;
            break;  // DSR, CPR: report status or the cursor
        case 't':
            drop = true;
            break;  // XTWINOPS: window reports, moves, title stack
        case 'q':
            drop = lead == '>';
            break;  // XTVERSION
        case 'p':
            drop = body.find('$') != std::string::npos;
            break;  // DECRQM: report a mode
        case 'u':
            drop = lead == '?';
            break;  // keyboard protocol query
        case 'S':
            drop = lead == '?';
            break;  // XTSMGRAPHICS query
        case 'h':
        case 'l':
            drop = reporting_mode(body);
            break;  // mouse and focus reporting
        default:
            break;
    }
    if (drop)
        ++dropped_;
    else
        out += seq_;
    seq_.clear();
}

void EscapeFilter::feed(const char* p, size_t n, std::string& out) {
    for (size_t i = 0; i < n; ++i) {
        const unsigned char c = static_cast<unsigned char>(p[i]);
        switch (state_) {
            case State::Ground:
                if (c == ESC) {
                    seq_.assign(1, ESC);
                    state_ = State::Esc;
                } else if (c == 0x05) {
                    ++dropped_;  // ENQ: the terminal answers with its answerback
                } else if (c == 0xC2) {
                    state_ = State::C2;  // perhaps a C1 control, U+0080..U+009F
                } else {
                    out += static_cast<char>(c);
                }
                break;
            case State::C2:
                state_ = State::Ground;
                if (c == 0x9B) {
                    seq_ = "\x1b[";  // 8-bit CSI: judged as the 7-bit one
                    state_ = State::Csi;
                } else if (c == 0x9D || c == 0x90 || c == 0x98 || c == 0x9E || c == 0x9F) {
                    ++dropped_;  // 8-bit OSC, DCS, SOS, PM, APC: strings, dropped whole
                    state_ = State::String;
                } else if (c >= 0x80 && c <= 0x9F) {
                    ++dropped_;
                } else {
                    out += '\xC2';
                    --i;  // not a C1 control: read this byte afresh
                }
                break;
            case State::Esc:
                seq_ += static_cast<char>(c);
                if (c == '[') {
                    state_ = State::Csi;
                } else if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_') {
                    // OSC, DCS, SOS, PM, APC: strings up to BEL or ST, dropped whole.
                    state_ = State::String;
                    ++dropped_;
                    seq_.clear();
                } else if (c >= 0x20 && c <= 0x2F) {
                    state_ = State::EscInter;
                } else if (c == 'Z') {
                    ++dropped_;  // DECID: identify yourself
                    seq_.clear();
                    state_ = State::Ground;
                } else if (c == ESC) {
                    seq_.assign(1, ESC);  // a lone ESC, then another
                } else {
                    out += seq_;
                    seq_.clear();
                    state_ = State::Ground;
                }
                break;
            case State::EscInter:
                seq_ += static_cast<char>(c);
                if (c >= 0x30 && c <= 0x7E) {
                    out += seq_;
                    seq_.clear();
                    state_ = State::Ground;
                } else if (c < 0x20 || seq_.size() > 8) {
                    ++dropped_;
                    seq_.clear();
                    state_ = State::Ground;
                }
                break;
            case State::Csi:
                seq_ += static_cast<char>(c);
                if (c >= 0x40 && c <= 0x7E) {
                    csi_done(out);
                    state_ = State::Ground;
                } else if (c < 0x20 || c > 0x7E || seq_.size() > kMaxSeq) {
                    // Not a sequence a terminal would finish: none of it passes.
                    ++dropped_;
                    seq_.clear();
                    state_ = c == ESC ? State::Esc : State::Ground;
                    if (c == ESC) seq_.assign(1, ESC);
                }
                break;
            case State::String:
                if (c == 0x07)
                    state_ = State::Ground;  // BEL ends an OSC
                else if (c == ESC)
                    state_ = State::StringEsc;
                else if (c == 0xC2)
                    state_ = State::StringC2;
                else if (c == 0x18 || c == 0x1A)
                    state_ = State::Ground;  // CAN, SUB abort it
                break;
            case State::StringC2:
                // U+009C is the 8-bit ST.
                state_ = c == 0x9C ? State::Ground : State::String;
                break;
            case State::StringEsc:
                // ST is ESC \ ; any other ESC also ends the string (and starts anew).
                if (c == '\\') {
                    state_ = State::Ground;
                } else {
                    seq_.assign(1, ESC);
                    state_ = State::Esc;
                    --i;
                }
                break;
        }
    }
}

}  // namespace stockade::supervise
