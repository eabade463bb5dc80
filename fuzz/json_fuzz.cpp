// libFuzzer target for parse_json (a reader of our own), which every byte a
// client, an MCP peer or a task's runner sends goes through: for any text, it
// must agree with nlohmann's own parser (the same value and the same dump)
// wherever the text is within the bounds, and refuse it otherwise. Never a
// crash, a hang or a sanitizer report. And dump_json, which writes what every
// peer reads, must give nlohmann's dump byte for byte: for every value read,
// and for the raw bytes as one string (a task's output is any bytes, valid
// UTF-8 or not).
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSTOCKADE_FUZZ=ON && make -C build-fuzz json_fuzz
//   build-fuzz/fuzz/json_fuzz fuzz/json_corpus
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "util/json_in.hpp"
#include "util/json_out.hpp"

namespace {

using nlohmann::json;

// How deep and how many values, counted as the bounds count them (every
// value, a repeated key's too), without building anything.
struct Count {
    size_t depth = 0, max_depth = 0, values = 0;
    bool value() { return ++values, true; }
    bool null() { return value(); }
    bool boolean(bool) { return value(); }
    bool number_integer(json::number_integer_t) { return value(); }
    bool number_unsigned(json::number_unsigned_t) { return value(); }
    bool number_float(json::number_float_t, const std::string&) { return value(); }
    bool string(std::string&) { return value(); }
    bool binary(json::binary_t&) { return false; }
    bool open() {
        value();
        if (++depth > max_depth) max_depth = depth;
        return true;
    }
    bool start_object(size_t) { return open(); }
    bool start_array(size_t) { return open(); }
    bool end_object() { return --depth, true; }
    bool end_array() { return --depth, true; }
    bool key(std::string&) { return true; }
    bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // Small, so that fuzzing often lands on both edges.
    const stockade::JsonBounds bounds{4, 16};
    const stockade::JsonIn in = stockade::parse_json(text, bounds);
    const auto dump = [](const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
    const json raw = std::string(text);
    if (stockade::dump_json(raw) != dump(raw)) __builtin_trap();
    const json keyed = {{std::string(text), raw}, {"a", {raw, 1, nullptr}}};
    if (stockade::dump_json(keyed) != dump(keyed)) __builtin_trap();
    Count n;
    const bool valid = json::sax_parse(text.begin(), text.end(), &n, json::input_format_t::json, true);
    const bool within = valid && n.max_depth <= bounds.max_depth && n.values <= bounds.max_values;
    if (in.ok() != within) __builtin_trap();
    if (in.ok()) {
        const json ref = json::parse(text);
        if (in.value != ref || in.value.dump() != ref.dump()) __builtin_trap();
        if (stockade::dump_json(in.value) != dump(ref)) __builtin_trap();
    } else if (!in.value.is_null()) {
        __builtin_trap();  // a refused text leaves nothing half-built
    }
    return 0;
}
