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
// Optimal string alignment distance: a swap of two neighbours ("raed") is one
// edit, the commonest typo of all.
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
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
