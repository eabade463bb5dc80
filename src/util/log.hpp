// The log of the long-running modes (serve, mcp): one line per event, with a
// level, on stderr. Under systemd (stderr is the journal's stream, as
// $JOURNAL_STREAM says), each line starts with its syslog priority "<N>" so
// journald files it at that level; on a terminal or a file, with the level's
// name. stdout is never used: for mcp it is the protocol.
#pragma once
#include <string>

namespace stockade::log {

enum class Level { Error = 3, Warning = 4, Info = 6, Debug = 7 };

// -q: warnings and errors only; -v: debug too. Default: info.
void set_level(Level max);
bool enabled(Level l);
void write(Level l, const std::string& component, const std::string& message);

inline void error(const std::string& c, const std::string& m) { write(Level::Error, c, m); }
inline void warning(const std::string& c, const std::string& m) { write(Level::Warning, c, m); }
inline void info(const std::string& c, const std::string& m) { write(Level::Info, c, m); }
inline void debug(const std::string& c, const std::string& m) { write(Level::Debug, c, m); }

}  // namespace stockade::log
