#include "util/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace stockade::log {
namespace {

Level g_max = Level::Info;

bool to_journal() {
    static const bool yes = [] {
        const char* js = std::getenv("JOURNAL_STREAM");
        if (!js) return false;
        unsigned long dev = 0, ino = 0;
        if (std::sscanf(js, "%lu:%lu", &dev, &ino) != 2) return false;
        struct stat st;
        return ::fstat(2, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
    }();
    return yes;
}

const char* name(Level l) {
    switch (l) {
        case Level::Error:
            return "error";
        case Level::Warning:
            return "warning";
        case Level::Info:
            return "info";
        case Level::Debug:
            return "debug";
    }
    return "info";
}

}  // namespace

void set_level(Level max) { g_max = max; }
bool enabled(Level l) { return static_cast<int>(l) <= static_cast<int>(g_max); }

void write(Level l, const std::string& component, const std::string& message) {
    if (!enabled(l)) return;
    std::string line;
    if (to_journal()) line = "<" + std::to_string(static_cast<int>(l)) + ">";
    line += "stockade " + component + ": " + (to_journal() ? "" : std::string(name(l)) + ": ");
    // One event, one line, whatever the message holds.
    for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
    line += '\n';
    (void)!::write(2, line.data(), line.size());
}

}  // namespace stockade::log
