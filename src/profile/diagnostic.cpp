#include "profile/diagnostic.hpp"

#include <algorithm>

namespace stockade::profile {

std::string Diagnostic::str() const {
    std::string s;
    if (!file.empty()) {
        s += file;
        // Command-line sources ("--set") have no meaningful line and column.
        if (line && file.rfind("--", 0) != 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
        s += ": ";
    }
    if (!key.empty()) s += key + ": ";
    return s + message;
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}
}  // namespace

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_d = SIZE_MAX;
    for (const auto& c : candidates) {
        size_t d = edit_distance(word, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    // A third of the word's length, at least 1 edit and at most 3: close enough to be a typo.
    size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
    return best_d <= limit ? best : std::string();
}

}  // namespace stockade::profile
