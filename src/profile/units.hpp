// Human units in profiles and flags: sizes ("512M", "1.5G") and durations ("1.5s", "500ms").
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stockade::profile {

// Binary multiples (K = 1024). A bare number is bytes. nullopt when malformed.
std::optional<uint64_t> parse_size(std::string_view text);
// ms, s, m, h; a bare number is seconds. Result in milliseconds.
std::optional<uint64_t> parse_duration_ms(std::string_view text);

std::string format_size(uint64_t bytes);

}  // namespace stockade::profile
