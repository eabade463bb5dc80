#include <doctest/doctest.h>

#include "profile/diagnostic.hpp"
#include "profile/schema.hpp"
#include "profile/units.hpp"

using namespace stockade::profile;

TEST_CASE("sizes") {
    CHECK(parse_size("512M") == 512ull << 20);
    CHECK(parse_size("2G") == 2ull << 30);
    CHECK(parse_size("1.5K") == 1536);
    CHECK(parse_size("4096") == 4096);
    CHECK(parse_size("64KiB") == 64 << 10);
    CHECK_FALSE(parse_size("512X"));
    CHECK_FALSE(parse_size(""));
    CHECK_FALSE(parse_size("M"));
    CHECK_FALSE(parse_size("-1M"));
    CHECK_FALSE(parse_size("1..5M"));
    CHECK_FALSE(parse_size("99999999999T"));
    CHECK(format_size(128ull << 20) == "128M");
    CHECK(format_size(1000) == "1000");
}

TEST_CASE("durations") {
    CHECK(parse_duration_ms("1.5s") == 1500);
    CHECK(parse_duration_ms("500ms") == 500);
    CHECK(parse_duration_ms("10m") == 600000);
    CHECK(parse_duration_ms("2") == 2000);
    CHECK_FALSE(parse_duration_ms("5 s"));
    CHECK_FALSE(parse_duration_ms("fast"));
}

TEST_CASE("absolute path normalization") {
    CHECK(normalize_abs_path("/usr") == "/usr");
    CHECK(normalize_abs_path("//usr///lib/") == "/usr/lib");
    CHECK(normalize_abs_path("/") == "/");
    CHECK(normalize_abs_path("usr").empty());
    CHECK(normalize_abs_path("/usr/../etc").empty());
    CHECK(normalize_abs_path("/./x").empty());
    CHECK(normalize_abs_path("").empty());
}

TEST_CASE("bind specs") {
    Bind b;
    CHECK(parse_bind_spec("/data", false, b).empty());
    CHECK(b.src == "/data");
    CHECK(b.dst == "/data");
    CHECK(parse_bind_spec("/host/x:/jail/y", true, b).empty());
    CHECK(b.src == "/host/x");
    CHECK(b.dst == "/jail/y");
    CHECK(b.writable);
    CHECK(parse_bind_spec("rel:/x", false, b).find("source") == 0);
    CHECK(parse_bind_spec("/x:rel", false, b).find("destination") == 0);
    CHECK(parse_bind_spec("/x:/", false, b).find("root") != std::string::npos);
    CHECK(parse_bind_spec("/x:/proc/sys", false, b).find("/proc is built") != std::string::npos);
    CHECK(parse_bind_spec("/x:/dev", false, b).find("/dev is built") != std::string::npos);
    CHECK(parse_bind_spec("/x:/device", false, b).empty());
}

TEST_CASE("did you mean") {
    std::vector<std::string> keys = {"tmp_size", "home_size", "shm_size", "proc"};
    CHECK(did_you_mean("tmp_sise", keys) == "tmp_size");
    CHECK(did_you_mean("prc", keys) == "proc");
    CHECK(did_you_mean("completely_different", keys).empty());
}

TEST_CASE("diagnostic formatting") {
    CHECK(Diagnostic{"a.toml", 3, 7, "user.uid", "bad"}.str() == "a.toml:3:7: user.uid: bad");
    CHECK(Diagnostic{"--set", 1, 5, "run.cwd", "bad"}.str() == "--set: run.cwd: bad");
    CHECK(Diagnostic{"a.toml", 0, 0, "", "bad"}.str() == "a.toml: bad");
}
