#include <doctest/doctest.h>

#include <string>

#include "supervise/escape_filter.hpp"

using stockade::supervise::EscapeFilter;

namespace {
std::string filter(const std::string& in, size_t chunk = 0) {
    EscapeFilter f;
    std::string out;
    if (!chunk) chunk = in.size() ? in.size() : 1;
    for (size_t i = 0; i < in.size(); i += chunk) f.feed(in.data() + i, std::min(chunk, in.size() - i), out);
    return out;
}
}  // namespace

TEST_CASE("escape filter: colour, cursor movement and text pass; queries, OSC, DCS and C1 do not") {
    const std::string keep = "plain \x1b[1;31mred\x1b[0m \x1b[2;5H\x1b[K\x1b[?25l\x1b[?1049h\x1b(B\x1b" "7x\x1b" "8 \xc3\xa9 \xe2\x82\xac\r\n";
    const std::string bad =
        "\x1b]52;c;?\x07"                 // clipboard read
        "\x1b]52;c;ZWNobw==\x1b\\"        // clipboard write, ST-terminated
        "\x1b]0;title\x07\x1b]2;t\x1b\\"  // titles
        "\x1b]11;?\x07"                   // colour report
        "\x1bP+q544e\x1b\\"               // XTGETTCAP (DCS)
        "\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\"
        "\x1b[c\x1b[>c\x1b[=c\x1b[5n\x1b[6n\x1b[?6n\x1b[>q\x1b[14t\x1b[21t\x1b[?2$p\x1b[?u"
        "\x1b[?1000h\x1b[?1006;1000h\x1b[?1004h\x1bZ\x05"
        "\xc2\x9b" "6n\xc2\x9d" "52;c;?\x07";
    for (size_t chunk : {0, 1, 2, 3, 7}) {
        CAPTURE(chunk);
        const std::string out = filter(keep + bad + keep, chunk);
        CHECK(out.find("\x1b]") == std::string::npos);
        CHECK(out.find("\x1bP") == std::string::npos);
        CHECK(out.find("\x1b[c") == std::string::npos);
        CHECK(out.find("6n") == std::string::npos);
        CHECK(out.find("\x1b[?1000") == std::string::npos);
        CHECK(out.find('\x05') == std::string::npos);
        CHECK(out.find("\xc2\x9b") == std::string::npos);
        CHECK(out.find("title") == std::string::npos);
        CHECK(out.find("ZWNobw") == std::string::npos);
        CHECK(out == keep + keep.substr(0, 0) + keep);
    }
}

TEST_CASE("escape filter: an unfinished or overlong CSI never passes; text after it does") {
    std::string junk = "\x1b[" + std::string(400, '1') + "m after";
    CHECK(filter(junk).find("after") != std::string::npos);
    CHECK(filter(junk).find("\x1b[") == std::string::npos);
    CHECK(filter("a\x1b]0;never ended") == "a");
    CHECK(filter("\xc2") == "");            // held: the next byte decides
    CHECK(filter("\xc2\xa9") == "\xc2\xa9");  // U+00A9, not a C1 control
}
