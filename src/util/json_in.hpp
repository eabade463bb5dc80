// Reading JSON from someone we do not trust (a client, a task's runner, an
// MCP peer). nlohmann's DOM copy and dump recurse, so a deep enough text
// overflows the stack of whoever copies it; and a text of many tiny values
// costs many times its size in nodes. Both are bounded here, while parsing,
// before a single node past the bound exists. The text is read by a reader of
// our own into nlohmann's values: the texts nlohmann accepts, no others
// (fuzz/json_fuzz.cpp), at one scan and one copy per string.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace stockade {

struct JsonBounds {
    size_t max_depth = 32;       // nested objects and arrays
    size_t max_values = 100000;  // values of any kind, keys excluded
};

struct JsonIn {
    nlohmann::json value;
    std::string error;  // empty when the text parsed within the bounds
    // The exact text of each "id" that is a non-integer number, keyed by the
    // index of the object in a top-level array (-1: the top-level object).
    // JSON-RPC ids must come back as the same token; 1e29 parsed as a double
    // would be dumped as 1e+29.
    std::map<long, std::string> raw_float_ids;
    bool ok() const { return error.empty(); }
};

JsonIn parse_json(std::string_view text, const JsonBounds& bounds);

// The JSON text to echo for an id: the token as it came, where it matters.
std::string id_text(const JsonIn& in, const nlohmann::json& id, long index = -1);

}  // namespace stockade
