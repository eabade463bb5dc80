#include "profile/units.hpp"

#include <cmath>
#include <cstdlib>

namespace stockade::profile {
namespace {

// Splits "1.5G" into 1.5 and "G"; rejects empty numbers, signs, and junk.
std::optional<std::pair<double, std::string_view>> split_number(std::string_view t) {
    size_t i = 0;
    bool digits = false, dot = false;
    for (; i < t.size(); ++i) {
        char c = t[i];
        if (c >= '0' && c <= '9') {
            digits = true;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (!digits) return std::nullopt;
    std::string num(t.substr(0, i));
    double v = std::strtod(num.c_str(), nullptr);
    if (!std::isfinite(v)) return std::nullopt;
    return std::make_pair(v, t.substr(i));
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
    auto parts = split_number(text);
    if (!parts) return std::nullopt;
    auto [v, unit] = *parts;
    double mul;
    if (unit.empty() || unit == "B")
        mul = 1;
    else if (unit == "K" || unit == "KiB" || unit == "k")
        mul = 1024.0;
    else if (unit == "M" || unit == "MiB")
        mul = 1024.0 * 1024;
    else if (unit == "G" || unit == "GiB")
        mul = 1024.0 * 1024 * 1024;
    else if (unit == "T" || unit == "TiB")
        mul = 1024.0 * 1024 * 1024 * 1024;
    else
        return std::nullopt;
    double bytes = v * mul;
    if (bytes > 9.2e18) return std::nullopt;
    return static_cast<uint64_t>(std::llround(bytes));
}

std::optional<uint64_t> parse_duration_ms(std::string_view text) {
    auto parts = split_number(text);
    if (!parts) return std::nullopt;
    auto [v, unit] = *parts;
    double mul;
    if (unit == "ms")
        mul = 1;
    else if (unit.empty() || unit == "s")
        mul = 1000;
    else if (unit == "m" || unit == "min")
        mul = 60e3;
    else if (unit == "h")
        mul = 3600e3;
    else
        return std::nullopt;
    double ms = v * mul;
    if (ms > 9.2e15) return std::nullopt;
    return static_cast<uint64_t>(std::llround(ms));
}

std::string format_size(uint64_t b) {
    const char* units[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (u < 4 && b >= 1024 && b % 1024 == 0) {
        b /= 1024;
        ++u;
    }
    return std::to_string(b) + units[u];
}

}  // namespace stockade::profile
