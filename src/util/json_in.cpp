#include "util/json_in.hpp"

#include <vector>

namespace stockade {
namespace {

using nlohmann::json;

// A SAX consumer that builds the DOM through nlohmann's own builder and stops
// the parse (returns false) the moment a bound is passed.
class BoundedSax {
public:
    BoundedSax(JsonIn& out, const JsonBounds& b) : out_(out), b_(b), dom_(out.value, false) {}

    bool null() { return value() && dom_.null(); }
    bool boolean(bool v) { return value() && dom_.boolean(v); }
    bool number_integer(json::number_integer_t v) { return value() && dom_.number_integer(v); }
    bool number_unsigned(json::number_unsigned_t v) { return value() && dom_.number_unsigned(v); }
    bool number_float(json::number_float_t v, const std::string& s) {
        if (id_next_) out_.raw_float_ids[index_] = s;
        return value() && dom_.number_float(v, s);
    }
    bool string(std::string& v) { return value() && dom_.string(v); }
    bool binary(json::binary_t& v) { return value() && dom_.binary(v); }
    bool start_object(size_t n) {
        if (!value() || !open(false)) return false;
        return dom_.start_object(n);
    }
    bool key(std::string& k) {
        // An "id" of the top-level object, or of an object directly in the top-level array.
        const size_t d = stack_.size();
        id_next_ = k == "id" && ((d == 1) || (d == 2 && stack_[0]));
        return dom_.key(k);
    }
    bool end_object() {
        stack_.pop_back();
        return dom_.end_object();
    }
    bool start_array(size_t n) {
        if (!value() || !open(true)) return false;
        return dom_.start_array(n);
    }
    bool end_array() {
        stack_.pop_back();
        return dom_.end_array();
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

    JsonIn& out_;
    const JsonBounds& b_;
    nlohmann::detail::json_sax_dom_parser<json> dom_;
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
