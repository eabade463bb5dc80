// A pre-scan of TOML text for how deeply it nests, before toml++ (which
// recurses per level, and overflows the stack on a 300,000-deep header) sees it.
#pragma once
#include <optional>
#include <string_view>

namespace stockade::profile {

constexpr unsigned kMaxNesting = 32;

struct Where {
    unsigned line = 1, column = 1;
};

// Where the text first nests deeper than kMaxNesting: brackets and braces
// outside strings and comments, plus the dots of a dotted key or table header
// on one line. Conservative (a float's dot counts too), which no real profile
// comes near.
std::optional<Where> too_deep(std::string_view text);

}  // namespace stockade::profile
