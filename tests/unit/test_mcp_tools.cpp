#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "mcp/outputs.hpp"
#include "mcp/tools.hpp"

using nlohmann::json;
using namespace stockade::mcp;

namespace {
const ToolConfig kCfg{{"loopback", "none"}, 30000};
}

TEST_CASE("mcp tools: the schema states the operator's limits and modes") {
    json list = tool_list(kCfg);
    json run = list["tools"][0];
    CHECK(run["name"] == "run_python");
    CHECK(run["inputSchema"]["properties"]["timeout_s"]["maximum"] == 30.0);
    CHECK(run["inputSchema"]["properties"]["network"]["enum"] == json{"loopback", "none"});
    CHECK(run["description"].get<std::string>().find("at most 30 s") != std::string::npos);
}

TEST_CASE("mcp tools: arguments become serve requests, or the model's error") {
    ServeCall c = to_serve("run_python", {{"code", "print(1)"}, {"timeout_s", 2}, {"network", "none"}}, kCfg);
    CHECK(c.mode == "none");
    CHECK(c.request["op"] == "run");
    CHECK(c.request["timeout"] == 2);
    CHECK(c.request["return_files"].size() == 5);
    CHECK_THROWS_AS(to_serve("run_python", {{"code", 5}}, kCfg), ToolError);
    CHECK_THROWS_AS(to_serve("run_python", {{"code", "1"}, {"timeout_s", 60}}, kCfg), ToolError);
    CHECK_THROWS_AS(to_serve("run_python", {{"code", "1"}, {"network", "host"}}, kCfg), ToolError);
    CHECK_THROWS_AS(to_serve("nope", json::object(), kCfg), UnknownTool);
    c = to_serve("python_session_run", {{"session", "s"}, {"code", "x"}}, kCfg);
    CHECK(c.request["return_files"].size() == 5);  // a cell's images come back too
}

TEST_CASE("mcp tools: images by their bytes, never SVG") {
    CHECK(image_type(std::string("\x89PNG\r\n\x1a\n....", 12)) == "image/png");
    CHECK(image_type("\xff\xd8\xff\xe0") == "image/jpeg");
    CHECK(image_type("GIF89a...") == "image/gif");
    CHECK(image_type("RIFF\x10\0\0\0WEBPVP8 " + std::string()) == "");  // the NUL cuts the literal
    CHECK(image_type(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)) == "image/webp");
    CHECK(image_type("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>") == "");
    CHECK(image_type("") == "");
}

TEST_CASE("mcp tools: a result stays far below the client's message cap") {
    Outputs outputs("");  // nowhere to keep the whole: still cut
    json ans = {{"status", "ok"}, {"stdout", std::string(3u << 20, 'a') + "END"}, {"stderr", "e"},
                {"degraded", json::array({"x"})}, {"files", json::object()}};
    ServeCall call{{{"op", "run"}}, "loopback"};
    json r = to_result("run_python", ans, call, kCfg, outputs);
    CHECK(r.dump().size() < (1u << 20) + 4096);
    CHECK(r["structuredContent"]["truncated"] == true);
    CHECK(r["structuredContent"]["stdout_bytes"] == (3u << 20) + 3);
    CHECK(r["structuredContent"]["stdout"].get<std::string>().find("END") != std::string::npos);  // the tail
    CHECK_FALSE(r["structuredContent"].contains("degraded"));  // the operator's, not the model's
    ans = {{"status", "timeout_wall"}, {"stdout", ""}, {"stderr", ""}};
    call.request["timeout"] = 0.5;
    r = to_result("run_python", ans, call, kCfg, outputs);
    CHECK(r["content"][0]["text"].get<std::string>().find("time limit of 0.5 s") != std::string::npos);
    CHECK(r["isError"] == true);
}

TEST_CASE("mcp outputs: parts never split a UTF-8 character, and add up to the whole") {
    char dir[] = "/tmp/stockade-outputs-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    {
        Outputs o(dir);
        std::string whole;
        while (whole.size() < 3 * Outputs::kPart) whole += "ab\xc3\xa9\xe2\x82\xac";  // 1, 2 and 3-byte characters
        auto uris = o.keep("stdout", whole);
        REQUIRE(uris.size() == 4);
        std::string back;
        for (const auto& u : uris) {
            auto part = o.read(u);
            REQUIRE(part);
            CHECK((static_cast<unsigned char>((*part)[0]) & 0xC0) != 0x80);
            back += *part;
        }
        CHECK(back == whole);
        CHECK_FALSE(o.read(uris[0] + "9"));
        CHECK_FALSE(o.read("stockade://output/999/stdout/0"));
    }
    CHECK(::rmdir(dir) == 0);  // its files went with it
}
