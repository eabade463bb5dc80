// A problem with a profile, located precisely enough to fix without guessing.
#pragma once
#include <string>
#include <vector>

namespace stockade::profile {

struct Diagnostic {
    std::string file;  // path, "<builtin>/python.toml", or "--set"
    unsigned line = 0, column = 0;
    std::string key;  // dotted key, e.g. "filesystem.tmp_size"
    std::string message;

    // "file:line:col: key: message" (parts that are unknown are left out)
    std::string str() const;
};

// Thrown when a profile fails to load; carries every problem found, first one first.
struct ProfileError {
    std::vector<Diagnostic> diagnostics;
};

// Closest candidate by edit distance, or "" when nothing is close enough to suggest.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace stockade::profile
