#include "util/json_out.hpp"

#include <string_view>

#include "util/utf8.hpp"

namespace stockade {
namespace {

using json = nlohmann::json;
using Serializer = nlohmann::detail::serializer<json>;

// s as a JSON string, escaped as nlohmann escapes it (ensure_ascii off); false,
// with nothing appended, where s is not valid UTF-8: that is nlohmann's to
// replace, its way.
bool put_string(std::string& out, std::string_view s) {
    const size_t mark = out.size();
    out += '"';
    const char* p = s.data();
    const char* const end = p + s.size();
    const char* run = p;
    while (p < end) {
        const auto c = static_cast<unsigned char>(*p);
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            ++p;
            continue;
        }
        if (c >= 0x80) {
            const size_t n = utf8_length(p, end);
            if (n == 0) {
                out.resize(mark);
                return false;
            }
            p += n;
            continue;
        }
        out.append(run, p);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\r':
                out += "\\r";
                break;
            default: {
                static constexpr char kHex[] = "0123456789abcdef";
                const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
                out.append(u, sizeof u);
            }
        }
        run = ++p;
    }
    out.append(run, p);
    out += '"';
    return true;
}

void put(std::string& out, Serializer& ser, const json& v) {
    switch (v.type()) {
        case json::value_t::object: {
            out += '{';
            bool first = true;
            for (const auto& [k, e] : v.items()) {
                if (!first) out += ',';
                first = false;
                if (!put_string(out, k)) ser.dump(json(k), false, false, 0);
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
        case json::value_t::string:
            if (put_string(out, v.get_ref<const std::string&>())) return;
            break;
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
