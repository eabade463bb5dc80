#include "util/json_in.hpp"

#include <vector>

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
    bool binary(json::binary_t&) { return false; }  // never in JSON text
    bool start_object(size_t) {
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
    bool start_array(size_t) {
        if (!value() || !open(true)) return false;
        refs_.push_back(&place(json::array()));
        return true;
    }
    bool end_array() {
        stack_.pop_back();
        refs_.pop_back();
        return true;
    }
    bool parse_error(size_t pos, const std::string&, const nlohmann::detail::exception& e) {
        if (out_.error.empty()) out_.error = "not JSON at byte " + std::to_string(pos) + ": " + trim(e.what());
        return false;
    }

private:
    static std::string trim(const std::string& what) {
        // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error ..."
        size_t c = what.find(": ");
        return c == std::string::npos ? what : what.substr(c + 2);
    }
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

}  // namespace

JsonIn parse_json(std::string_view text, const JsonBounds& bounds) {
    JsonIn in;
    BoundedSax sax(in, bounds);
    bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true);
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
