#include "profile/nesting.hpp"

namespace stockade::profile {

std::optional<Where> too_deep(std::string_view t) {
    unsigned depth = 0, dots = 0;
    Where at;
    auto starts = [&](size_t i, std::string_view s) { return t.substr(i, s.size()) == s; };
    for (size_t i = 0; i < t.size(); ++i) {
        char c = t[i];
        if (c == '\n') {
            ++at.line;
            at.column = 1;
            dots = 0;
            continue;
        }
        ++at.column;
        if (c == '#') {
            while (i + 1 < t.size() && t[i + 1] != '\n') ++i;
            continue;
        }
        if (c == '"' || c == '\'') {
            // Skip the string; multi-line forms may span lines.
            std::string_view close = starts(i, c == '"' ? "\"\"\"" : "'''") ? t.substr(i, 3) : t.substr(i, 1);
            size_t j = i + close.size();
            while (j < t.size() && !starts(j, close)) {
                if (c == '"' && t[j] == '\\')
                    ++j;
                else if (t[j] == '\n') {
                    if (close.size() == 1) break;  // an unterminated one-line string: toml++ reports it
                    ++at.line;
                    at.column = 1;
                }
                ++j;
            }
            i = j + close.size() - 1;
            if (i >= t.size()) break;
            continue;
        }
        if (c == '[' || c == '{')
            ++depth;
        else if ((c == ']' || c == '}') && depth > 0)
            --depth;
        else if (c == '.')
            ++dots;
        if (depth + dots > kMaxNesting) return at;
    }
    return std::nullopt;
}

}  // namespace stockade::profile
