#include "util/json_out.hpp"

#include <string_view>

namespace stockade {
namespace {

using json = nlohmann::json;
using Serializer = nlohmann::detail::serializer<json>;

// No byte that JSON escapes or that is part of a multi-byte (or invalid)
// UTF-8 sequence.
bool plain(std::string_view s) {
    unsigned char bad = 0;
    for (unsigned char c : s) bad |= static_cast<unsigned char>((c < 0x20) | (c >= 0x80) | (c == '"') | (c == '\\'));
    return !bad;
}

void put(std::string& out, Serializer& ser, const json& v) {
    switch (v.type()) {
        case json::value_t::object: {
            out += '{';
            bool first = true;
            for (const auto& [k, e] : v.items()) {
                if (!first) out += ',';
                first = false;
                if (plain(k)) {
                    out += '"';
                    out += k;
                    out += '"';
                } else {
                    ser.dump(json(k), false, false, 0);
                }
                out += ':';
                put(out, ser, e);
            }
            out += '}';
            return;
        }
        case json::value_t::array: {
            out += '[';
            bool first = true;
            for (const auto& e : v) {
                if (!first) out += ',';
                first = false;
                put(out, ser, e);
            }
            out += ']';
            return;
        }
        case json::value_t::string: {
            const auto& s = v.get_ref<const std::string&>();
            if (plain(s)) {
                out += '"';
                out += s;
                out += '"';
                return;
            }
            break;
        }
        default:
            break;
    }
    ser.dump(v, false, false, 0);
}

}  // namespace

void append_json(std::string& out, const json& v) {
    Serializer ser(nlohmann::detail::output_adapter<char>(out), ' ', json::error_handler_t::replace);
    put(out, ser, v);
}

std::string dump_json(const json& v) {
    std::string out;
    append_json(out, v);
    return out;
}

}  // namespace stockade
