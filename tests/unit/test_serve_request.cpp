#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "profile/loader.hpp"
#include "serve/client.hpp"
#include "serve/request.hpp"
#include "util/json_in.hpp"

using nlohmann::json;
using namespace stockade;
using serve::RequestError;

namespace {
profile::Limits limits() { return profile::load(profile::CommandLine{}).limits; }

std::string error_of(json req, bool cell = false) {
    try {
        serve::parse_task(req, cell, limits());
    } catch (const RequestError& e) {
        return e.code + ": " + e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("serve requests: a run becomes the runner's message") {
    json req = {{"id", 1},
                {"op", "run"},
                {"code", "print(1)"},
                {"argv", {"a"}},
                {"stdin", "x"},
                {"files", {{"d/a.txt", "AAA"}, {"b.bin", {{"b64", "AAEC"}}}}},
                {"return_files", {"out/*.png"}},
                {"timeout", 2.5}};
    serve::Task t = serve::parse_task(req, false, limits());
    // One line, newline-terminated, as the runner reads it.
    REQUIRE(!t.to_runner.empty());
    CHECK(t.to_runner.back() == '\n');
    CHECK(t.to_runner.find('\n') == t.to_runner.size() - 1);
    json m = json::parse(t.to_runner);
    CHECK(m["op"] == "run");
    CHECK(m["code"] == "print(1)");
    CHECK(m["argv"] == json{"a"});
    CHECK(m["stdin"] == json{{"text", "x"}});
    CHECK(m["files"]["d/a.txt"] == json{{"text", "AAA"}});
    CHECK(m["files"]["b.bin"] == json{{"b64", "AAEC"}});
    CHECK(m["return_files"] == json{"out/*.png"});
    CHECK(m["return_cap"] == serve::kReturnCap);
    CHECK(t.timeout_ms == 2500);
    CHECK(t.limit_sets.empty());
    json lowered = {{"id", 1}, {"op", "run"}, {"code", "1"}, {"limits", {{"memory", "64M"}, {"pids", 8}}}};
    t = serve::parse_task(lowered, false, limits());
    CHECK(t.limit_sets == std::vector<std::string>{"limits.memory=64M", "limits.pids=8"});
}

TEST_CASE("serve requests: a big request is encoded once, into room made for it") {
    // Escapes (a quote, a control byte) make the line longer than the bytes moved in.
    std::string big(1 << 20, 'x');
    big[10] = '"';
    big[20] = '\x01';
    json req = {{"id", 1}, {"op", "run"}, {"code", big}, {"files", {{"f", big}, {"g", {{"b64", "AAAA"}}}}}};
    serve::Task t = serve::parse_task(req, false, limits());
    json m = json::parse(t.to_runner);
    CHECK(m["code"] == big);
    CHECK(m["files"]["f"]["text"] == big);
    // Room for 2 MiB and a little, not a doubled buffer.
    CHECK(t.to_runner.capacity() < 3 * (1u << 20));
    // A cell with code null is an empty cell, as before.
    json cell = {{"id", 1}, {"op", "session.run"}, {"code", nullptr}};
    CHECK(json::parse(serve::parse_task(cell, true, limits()).to_runner)["code"] == "");
}

TEST_CASE("serve requests: every malformed field is one clear error") {
    CHECK(error_of({{"op", "run"}}).find("exactly one of code or script") != std::string::npos);
    CHECK(error_of({{"op", "run"}, {"code", 5}}).find("code: expected a string") != std::string::npos);
    CHECK(error_of({{"op", "run"}, {"code", "1"}, {"argv", "x"}}).find("argv: expected an array") != std::string::npos);
    CHECK(error_of({{"op", "run"}, {"code", "1"}, {"files", {{"a", {{"b64", "!!"}}}}}}).find("not valid base64") !=
          std::string::npos);
    CHECK(error_of({{"op", "run"}, {"code", "1"}, {"timeout", -1}}).find("timeout: expected") != std::string::npos);
    CHECK(error_of({{"op", "run"}, {"code", "1"}, {"timeout", 1e9}}).find("may only lower") != std::string::npos);
    CHECK(error_of({{"op", "run"}, {"code", "1"}, {"frob", 1}}).find("unknown field \"frob\"") != std::string::npos);
    CHECK(error_of({{"op", "run"}, {"script", "x.py"}}).find("not among files") != std::string::npos);
    CHECK(error_of({{"op", "session.run"}, {"code", "1"}, {"argv", {"a"}}}, true).find("argv: not for") !=
          std::string::npos);
    CHECK(error_of({{"op", "session.run"}, {"code", "1"}, {"limits", {{"memory", "1M"}}}}, true).find("session.open") !=
          std::string::npos);
}

TEST_CASE("serve requests: limits may only be lowered") {
    profile::Limits base = limits(), asked = base;
    CHECK_NOTHROW(serve::check_lowered(base, asked));
    asked.memory = base.memory / 2;
    CHECK_NOTHROW(serve::check_lowered(base, asked));
    asked.memory = base.memory * 2;
    CHECK_THROWS_AS(serve::check_lowered(base, asked), RequestError);
    asked = base;
    asked.memory = 0;  // 0 lifts it: not a lowering
    CHECK_THROWS_AS(serve::check_lowered(base, asked), RequestError);
    asked = base;
    asked.require_cgroup = !base.require_cgroup;
    if (base.require_cgroup) CHECK_THROWS_AS(serve::check_lowered(base, asked), RequestError);
}

TEST_CASE("serve answers: the id is the request's own token") {
    CHECK(serve::answer_line("12345678901234567890123456789", {{"a", 1}}) ==
          "{\"id\":12345678901234567890123456789,\"a\":1}\n");
    CHECK(serve::answer_line("\"x\"", json::object()) == "{\"id\":\"x\"}\n");
    CHECK(serve::answer_line("", json::object()) == "{\"id\":null}\n");
    JsonIn in = parse_json("{\"id\": 1.50, \"op\": \"stats\"}", JsonBounds{});
    CHECK(id_text(in, in.value["id"]) == "1.50");
    in = parse_json("[{\"id\": 1e400}, {\"id\": 2.0}]", JsonBounds{});
    if (in.ok()) CHECK(id_text(in, in.value[1]["id"], 1) == "2.0");
}

TEST_CASE("bounded JSON: depth and count, before anything deeper exists") {
    std::string deep(100000, '[');
    deep += std::string(100000, ']');
    JsonIn in = parse_json(deep, JsonBounds{8, 1000});
    CHECK_FALSE(in.ok());
    CHECK(in.error.find("nested deeper than 8") != std::string::npos);
    std::string many = "[";
    for (int i = 0; i < 2000; ++i) many += "0,";
    many += "0]";
    in = parse_json(many, JsonBounds{8, 1000});
    CHECK(in.error.find("more than 1000 values") != std::string::npos);
    in = parse_json("{\"a\": [1, {\"b\": null}]}", JsonBounds{3, 10});
    CHECK(in.ok());
    CHECK(parse_json("{bad", JsonBounds{}).error.find("not JSON") != std::string::npos);
}

TEST_CASE("bounded JSON: the reader accepts exactly the texts nlohmann accepts") {
    using namespace std::string_literals;
    const std::string texts[] = {
        "\xEF\xBB\xBF{\"a\":1}"s, "\xEF\xBB{}"s, " \xEF\xBB\xBF{}"s, "{}\0junk"s, "\0{}"s, "[1,\0]"s, "-", "01", "1.",
        ".5", "1e", "1e+", "1E5", "-0", "-0.0", "18446744073709551615", "18446744073709551616",
        "-9223372036854775808", "-9223372036854775809", "1e308", "1e309", "-1e400", "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\u00e9\\/\\b\\f\\n\\r\\t\\\"\\\\\"", "\"\\u00G0\"",
        "\"\\x\"", "\"a\tb\"", "\"\x7f\"", "\"\xC2\x80\xDF\xBF\"", "\"\xC1\xBF\"", "\"\xE0\x9F\xBF\"",
        "\"\xED\xA0\x80\"", "\"\xF4\x8F\xBF\xBF\"", "\"\xF4\x90\x80\x80\"", "\"\xF5\x80\x80\x80\"", "tru", "nul",
        "truex", "[true,false,null]", " \t\r\n[ 1 , 2 ]\n", "{\"a\":1,}", "[1,]", "{\"a\" : { } }", "/* c */ 1", "",
        "  ", "{\"a\":1}{", "\"unterminated",
    };
    for (const std::string& t : texts) {
        CAPTURE(t);
        JsonIn in = parse_json(t, JsonBounds{});
        bool accepted = json::accept(t.begin(), t.end());
        CHECK(in.ok() == accepted);
        if (in.ok()) CHECK(in.value.dump() == json::parse(t.begin(), t.end()).dump());
    }
    // Where it stopped, and why.
    CHECK(parse_json("[1,x]", JsonBounds{}).error == "not JSON at byte 3: unexpected character");
    CHECK(parse_json("{\"a\" 1}", JsonBounds{}).error == "not JSON at byte 5: expected ':' after the key");
}

TEST_CASE("bounded JSON: the tree built is nlohmann's own, value for value") {
    const char* texts[] = {
        "null",
        "true",
        "-0",
        "12",
        "18446744073709551615",
        "-9223372036854775808",
        "1.5e3",
        "\"\"",
        "\"a\\u00e9\\ud83d\\ude00\\n\\\"\"",
        "[]",
        "{}",
        "[[],[[]],{}]",
        "{\"a\":1,\"a\":2,\"b\":[1,{\"c\":[true,false,null]},\"x\"],\"d\":{\"e\":{\"f\":[]}}}",
        "[{\"id\":1},{\"id\":2.5,\"k\":[{\"z\":\"\"}]},[{\"q\":{}}],3]",
        "{\"files\":{\"a\":{\"text\":\"AAA\"},\"b\":{\"b64\":\"AAEC\"}},\"argv\":[\"x\",\"y\"]}",
    };
    for (const char* t : texts) {
        CAPTURE(t);
        JsonIn in = parse_json(t, JsonBounds{});
        REQUIRE(in.ok());
        CHECK(in.value == json::parse(t));
        CHECK(in.value.dump() == json::parse(t).dump());
    }
    // A string of megabytes arrives whole, in its place.
    std::string big(3 << 20, 'y');
    JsonIn in = parse_json("{\"a\":[0,{\"b\":\"" + big + "\"}],\"c\":\"" + big + "\"}", JsonBounds{});
    REQUIRE(in.ok());
    CHECK(in.value["a"][1]["b"] == big);
    CHECK(in.value["c"] == big);
    // Broken texts are refused whole, with nothing half-built left behind.
    for (const char* t : {"[1,", "{\"a\":}", "{\"a\" 1}", "[1]]", "\"\\ud800\"", "\"\xff\"", "{\"a\":[1,2}"}) {
        CAPTURE(t);
        JsonIn bad = parse_json(t, JsonBounds{});
        CHECK_FALSE(bad.ok());
        CHECK(bad.value.is_null());
    }
}
