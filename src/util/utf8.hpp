// UTF-8 as JSON has it (RFC 3629), for the JSON reader and writer.
#pragma once
#include <cstddef>

namespace stockade {

// The length of the one well-formed UTF-8 character of two to four bytes
// that starts at p (no overlong form, no surrogate, nothing past U+10FFFF),
// or 0.
inline size_t utf8_length(const char* p, const char* end) {
    const size_t left = static_cast<size_t>(end - p);
    auto at = [p](size_t i) { return static_cast<unsigned char>(p[i]); };
    auto in = [&](size_t i, unsigned lo, unsigned hi) { return i < left && at(i) >= lo && at(i) <= hi; };
    const unsigned char c = at(0);
    if (c >= 0xC2 && c <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return in(1, lo, hi) && in(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return in(1, lo, hi) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
}

}  // namespace stockade
