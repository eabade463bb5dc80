#include "net/hostname.hpp"

#include <cstdio>

namespace stockade::net {

std::optional<std::string> normalize_host(std::string_view raw) {
    if (!raw.empty() && raw.back() == '.') raw.remove_suffix(1);
    if (raw.empty() || raw.size() > 253) return std::nullopt;
    std::string out;
    out.reserve(raw.size());
    size_t label = 0;
    char prev = '.';
    for (char c : raw) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c == '.') {
            if (label == 0 || prev == '-') return std::nullopt;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (c == '-' && label == 0) return std::nullopt;
            if (++label > 63) return std::nullopt;
        } else {
            return std::nullopt;  // NUL, control bytes, spaces, '_', '@', non-ASCII, ...
        }
        out += c;
        prev = c;
    }
    if (prev == '-') return std::nullopt;
    return out;
}

std::string printable(std::string_view raw, size_t max) {
    std::string out;
    for (unsigned char c : raw) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        }
    }
    return out;
}

}  // namespace stockade::net
