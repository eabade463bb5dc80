#include "util/json_in.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "util/utf8.hpp"

namespace stockade {
namespace {

using nlohmann::json;

// A SAX consumer that builds the DOM and stops the parse (returns false) the
// moment a bound is passed. Its own builder, not nlohmann's: that one copies
// each string out of the lexer, and a request's file of megabytes is then
// copied (and its pages faulted in) once more, on the loop others wait for.
// Here the lexer's string is moved into its place.
class BoundedSax {
public:
    BoundedSax(JsonIn& out, const JsonBounds& b) : out_(out), b_(b) {}

    bool null() { return value() && put(nullptr); }
    bool boolean(bool v) { return value() && put(v); }
    bool number_integer(json::number_integer_t v) { return value() && put(v); }
    bool number_unsigned(json::number_unsigned_t v) { return value() && put(v); }
    bool number_float(json::number_float_t v, const std::string& s) {
        if (id_next_) out_.raw_float_ids[index_] = s;
        return value() && put(v);
    }
    bool string(std::string& v) { return value() && put(std::move(v)); }
    bool start_object() {
        if (!value() || !open(false)) return false;
        refs_.push_back(&place(json::object()));
        return true;
    }
    bool key(std::string& k) {
        // An "id" of the top-level object, or of an object directly in the top-level array.
        const size_t d = stack_.size();
        id_next_ = k == "id" && ((d == 1) || (d == 2 && stack_[0]));
        // A repeated key: the last one wins, as nlohmann's own parser has it.
        slot_ = &refs_.back()->get_ref<json::object_t&>()[std::move(k)];
        return true;
    }
    bool end_object() {
        stack_.pop_back();
        refs_.pop_back();
        return true;
    }
    bool start_array() {
        if (!value() || !open(true)) return false;
        refs_.push_back(&place(json::array()));
        return true;
    }
    bool end_array() {
        stack_.pop_back();
        refs_.pop_back();
        return true;
    }
    bool fail(size_t pos, const char* why) {
        if (out_.error.empty()) out_.error = "not JSON at byte " + std::to_string(pos) + ": " + why;
        return false;
    }

private:
    bool value() {
        id_next_ = false;
        if (++values_ > b_.max_values) {
            out_.error = "more than " + std::to_string(b_.max_values) + " values";
            return false;
        }
        return true;
    }
    bool open(bool array) {
        // A new element of the top-level array: the next "id" belongs to it.
        if (stack_.size() == 1 && stack_[0]) ++index_;
        if (stack_.size() >= b_.max_depth) {
            out_.error = "nested deeper than " + std::to_string(b_.max_depth) + " levels";
            return false;
        }
        stack_.push_back(array);
        return true;
    }

    // Where the next value goes: the root, the end of the open array, or the
    // slot of the key just read. Pointers into a parent stay valid while it
    // is open: nothing is added to it until its open child ends.
    template <class V>
    bool put(V&& v) {
        place(std::forward<V>(v));
        return true;
    }
    template <class V>
    json& place(V&& v) {
        if (refs_.empty()) return out_.value = json(std::forward<V>(v));
        json& top = *refs_.back();
        if (top.is_array()) return top.get_ref<json::array_t&>().emplace_back(std::forward<V>(v));
        return *slot_ = json(std::forward<V>(v));
    }

    JsonIn& out_;
    const JsonBounds& b_;
    std::vector<json*> refs_;  // the open objects and arrays
    json* slot_ = nullptr;
    std::vector<bool> stack_;  // true: an array
    size_t values_ = 0;
    long index_ = -1;
    bool id_next_ = false;
};

// JSON text to BoundedSax's calls: the calls nlohmann's sax_parse (strict)
// makes, on exactly the texts it accepts; json_fuzz holds the two together.
// Its own because nlohmann's lexer keeps each byte twice as it reads (the
// value and the token's raw text), a push_back at a time: about 50 ms of a
// 7 MiB request here, on the loop every client waits on. Here a run of plain
// ASCII in a string is one scan and one copy. Recursion is bounded by the
// sax, which refuses an object or array past the depth bound.
class Reader {
public:
    Reader(std::string_view text, BoundedSax& sax)
        : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), sax_(sax) {}

    bool parse() {
        // A byte order mark at the very start is skipped, as nlohmann does.
        if (p_ < end_ && byte(0) == 0xEF) {
            if (end_ - p_ < 3 || byte(1) != 0xBB || byte(2) != 0xBF) return fail("invalid byte order mark");
            p_ += 3;
        }
        if (!value()) return false;
        space();
        return done() || fail("expected the end of the text after the value");
    }

private:
    unsigned char byte(size_t i) const { return static_cast<unsigned char>(p_[i]); }
    bool fail(const char* why) { return sax_.fail(static_cast<size_t>(p_ - begin_), why); }
    // nlohmann takes a NUL byte outside a string as the end of the text.
    bool done() const { return p_ == end_ || *p_ == '\0'; }
    bool at(char c) const { return p_ < end_ && *p_ == c; }
    bool digit() const { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; }
    void space() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }

    bool value() {
        space();
        if (done()) return fail("unexpected end of the text");
        switch (*p_) {
            case '{':
                return object();
            case '[':
                return array();
            case '"': {
                std::string s;
                return string(s) && sax_.string(s);
            }
            case 't':
                return literal("true") && sax_.boolean(true);
            case 'f':
                return literal("false") && sax_.boolean(false);
            case 'n':
                return literal("null") && sax_.null();
            default:
                if (*p_ == '-' || digit()) return number();
                return fail("unexpected character");
        }
    }

    bool literal(std::string_view word) {
        if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
            return fail("invalid literal");
        p_ += word.size();
        return true;
    }

    bool object() {
        ++p_;
        if (!sax_.start_object()) return false;
        space();
        if (at('}')) return ++p_, sax_.end_object();
        for (;;) {
            space();
            if (!at('"')) return fail("expected a string as the object's key");
            std::string k;
            if (!string(k) || !sax_.key(k)) return false;
            space();
            if (!at(':')) return fail("expected ':' after the key");
            ++p_;
            if (!value()) return false;
            space();
            if (at(',')) {
                ++p_;
                continue;
            }
            if (at('}')) return ++p_, sax_.end_object();
            return fail("expected ',' or '}' in the object");
        }
    }

    bool array() {
        ++p_;
        if (!sax_.start_array()) return false;
        space();
        if (at(']')) return ++p_, sax_.end_array();
        for (;;) {
            if (!value()) return false;
            space();
            if (at(',')) {
                ++p_;
                continue;
            }
            if (at(']')) return ++p_, sax_.end_array();
            return fail("expected ',' or ']' in the array");
        }
    }

    // As nlohmann reads a number: its integers as int64 (negative) or
    // uint64, past their range or with a fraction or exponent a double, which
    // must be finite.
    bool number() {
        const char* start = p_;
        bool integer = true;
        const bool negative = at('-');
        if (negative) ++p_;
        if (at('0')) {
            ++p_;
        } else if (digit()) {
            while (digit()) ++p_;
        } else {
            return fail("expected a digit");
        }
        if (at('.')) {
            integer = false;
            ++p_;
            if (!digit()) return fail("expected a digit after '.'");
            while (digit()) ++p_;
        }
        if (at('e') || at('E')) {
            integer = false;
            ++p_;
            if (at('+') || at('-')) ++p_;
            if (!digit()) return fail("expected a digit in the exponent");
            while (digit()) ++p_;
        }
        const std::string token(start, p_);
        char* stop = nullptr;
        errno = 0;
        if (integer && negative) {
            const long long v = std::strtoll(token.c_str(), &stop, 10);
            if (errno == 0) return sax_.number_integer(v);
        } else if (integer) {
            const unsigned long long v = std::strtoull(token.c_str(), &stop, 10);
            if (errno == 0) return sax_.number_unsigned(v);
        }
        const double d = std::strtod(token.c_str(), &stop);
        if (!std::isfinite(d)) return fail("number out of range");
        return sax_.number_float(d, token);
    }

    bool hex4(unsigned& v) {
        if (end_ - p_ < 4) return false;
        v = 0;
        for (int i = 0; i < 4; ++i, ++p_) {
            const char c = *p_;
            const int d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
            if (d < 0) return false;
            v = v << 4 | static_cast<unsigned>(d);
        }
        return true;
    }

    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | cp >> 6);
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | cp >> 12);
            out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | cp >> 18);
            out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
            out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    bool escape(std::string& out) {
        if (p_ == end_) return fail("unterminated string");
        const char c = *p_++;
        switch (c) {
            case '"':
            case '\\':
            case '/':
                out += c;
                return true;
            case 'b':
                out += '\b';
                return true;
            case 'f':
                out += '\f';
                return true;
            case 'n':
                out += '\n';
                return true;
            case 'r':
                out += '\r';
                return true;
            case 't':
                out += '\t';
                return true;
            case 'u':
                break;
            default:
                return fail("invalid escape in a string");
        }
        unsigned cp = 0;
        if (!hex4(cp)) return fail("expected four hex digits after \\u");
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("a low surrogate with no high one before it");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned low = 0;
            if (!at('\\') || end_ - p_ < 2 || p_[1] != 'u') return fail("a high surrogate with no low one after it");
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return fail("a high surrogate with no low one after it");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        put_utf8(out, cp);
        return true;
    }

    bool string(std::string& out) {
        ++p_;
        const char* run = p_;
        for (;;) {
            while (p_ < end_) {
                const unsigned char c = byte(0);
                if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
                ++p_;
            }
            if (p_ == end_) return fail("unterminated string");
            const unsigned char c = byte(0);
            if (c == '"') {
                out.append(run, p_);
                ++p_;
                return true;
            }
            if (c < 0x20) return fail("a control character in a string must be escaped");
            if (c >= 0x80) {
                const size_t n = utf8_length(p_, end_);
                if (n == 0) return fail("invalid UTF-8 in a string");
                p_ += n;
                continue;
            }
            out.append(run, p_);
            ++p_;
            if (!escape(out)) return false;
            run = p_;
        }
    }

    const char* begin_;
    const char* p_;
    const char* end_;
    BoundedSax& sax_;
};

}  // namespace

JsonIn parse_json(std::string_view text, const JsonBounds& bounds) {
    JsonIn in;
    BoundedSax sax(in, bounds);
    bool ok = Reader(text, sax).parse();
    if (!ok || !in.error.empty()) {
        if (in.error.empty()) in.error = "not JSON";
        in.value = json();  // iterative destruction: any depth below the bound is safe
        in.raw_float_ids.clear();
    }
    return in;
}

std::string id_text(const JsonIn& in, const json& id, long index) {
    if (id.is_number_float())
        if (auto it = in.raw_float_ids.find(index); it != in.raw_float_ids.end()) return it->second;
    return id.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace stockade
