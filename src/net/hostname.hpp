// The one normal form of a host name that the proxy uses for everything: the
// allowlist, the pins and the resolver all see the same string, so no byte
// can mean one thing to a check and another to getaddrinfo (a NUL, a trailing
// dot, upper case, a space).
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace stockade::net {

// An LDH name (letters, digits, hyphens; labels of 1 to 63, not starting or
// ending with '-'; at most 253 in all), lower-cased, with one trailing dot
// removed. Internationalised names must arrive as punycode ("xn--..."), as
// every HTTP client sends them. nullopt for anything else.
std::optional<std::string> normalize_host(std::string_view raw);

// For records and messages: printable ASCII kept, every other byte as \xNN,
// cut to `max` characters. The result is always valid UTF-8 and one line.
std::string printable(std::string_view raw, size_t max = 256);

}  // namespace stockade::net
