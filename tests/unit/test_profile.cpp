#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <string>
#include <unistd.h>

#include "profile/loader.hpp"
#include "profile/precomputed.hpp"
#include "profile/schema.hpp"

using namespace stockade::profile;

namespace {

std::vector<Diagnostic> errors_of(const std::string& text) {
    try {
        load_text(text, "t.toml");
    } catch (const ProfileError& e) {
        return e.diagnostics;
    }
    return {};
}

std::string first_error(const std::string& text) {
    auto d = errors_of(text);
    return d.empty() ? std::string() : d.front().str();
}

}  // namespace

TEST_CASE("built-in profiles load and the default is the python allowlist") {
    CommandLine cl;
    Policy p = load(cl);
    CHECK(p.name == "python");
    CHECK(p.python == "/usr/bin/python3");
    CHECK(p.net == NetMode::Loopback);
    CHECK(p.proc == ProcMode::Pid);
    CHECK(p.uid == 1000);
    CHECK(p.root_host_uid == 65534);
    REQUIRE(p.binds.size() == 3);
    CHECK(p.binds[0].src == "/usr");
    CHECK_FALSE(p.binds[0].writable);
    CHECK(p.noexec_writable);
    for (const auto& b : builtins()) {
        CommandLine c;
        c.profile = b.name;
        CHECK_NOTHROW(load(c));
    }
}

TEST_CASE("extends merges tables and replaces arrays") {
    Policy p = load_text("schema = 1\nextends = \"python\"\n[run]\nhostname = \"child\"\n[filesystem]\nro = [\"/usr\"]\n",
                         "t.toml");
    CHECK(p.hostname == "child");
    CHECK(p.python == "/usr/bin/python3");  // inherited from python
    CHECK(p.binds.size() == 1);             // arrays replace, they do not append
    CHECK(p.net == NetMode::Loopback);
    Policy s = load_text("schema = 1\nextends = \"strict\"\n", "t.toml");
    CHECK(s.net == NetMode::None);
    CHECK(s.tmp_size == 64ull << 20);
}

TEST_CASE("--set overrides any key, typed or as a string") {
    CommandLine cl;
    cl.sets = {"network.mode=none", "filesystem.tmp_size=1M", "user.uid=2000", "filesystem.ro=[\"/usr\"]",
               "run.cwd=/tmp"};
    Policy p = load(cl);
    CHECK(p.net == NetMode::None);
    CHECK(p.tmp_size == 1 << 20);
    CHECK(p.uid == 2000);
    CHECK(p.binds.size() == 1);
    CHECK(p.cwd == "/tmp");

    cl.sets = {"user.uid=abc"};
    try {
        load(cl);
        FAIL("expected an error");
    } catch (const ProfileError& e) {
        CHECK(e.diagnostics.front().str() == "--set: user.uid: expected an integer id, got a string");
    }
    cl.sets = {"schema=2"};
    CHECK_THROWS_AS(load(cl), ProfileError);
}

TEST_CASE("command-line binds, env and cwd") {
    CommandLine cl;
    cl.ro = {"/srv/data:/data"};
    cl.rw = {"/srv/out"};
    cl.env = {"A=1", "PATH=/x"};
    cl.env_pass = {"TOKEN"};
    cl.cwd = "/data";
    Policy p = load(cl);
    REQUIRE(p.binds.size() == 5);
    CHECK(p.binds[3].dst == "/data");
    CHECK(p.binds[3].origin == "--ro");
    CHECK(p.binds[4].writable);
    CHECK(p.cwd == "/data");
    bool path_overridden = false;
    for (auto& [k, v] : p.env) path_overridden |= (k == "PATH" && v == "/x");
    CHECK(path_overridden);
    CHECK(p.env_pass.back() == "TOKEN");

    cl = {};
    cl.rw = {"/srv/out:relative-destination"};
    cl.env = {"=x"};
    try {
        load(cl);
        FAIL("expected errors");
    } catch (const ProfileError& e) {
        CHECK(e.diagnostics.size() == 2);
    }

    // A relative source is the caller's: against the current directory; with
    // no destination, below the jail's working directory.
    char here[4096];
    REQUIRE(::getcwd(here, sizeof here));
    const std::string cwd = here;
    cl = {};
    cl.ro = {"data.csv", "./sub/../x:/x", "sub/dir"};
    p = load(cl);
    REQUIRE(p.binds.size() == 6);
    CHECK(p.binds[3].src == (cwd == "/" ? "" : cwd) + "/data.csv");
    CHECK(p.binds[3].dst == "/work/data.csv");
    CHECK(p.binds[4].src == (cwd == "/" ? "" : cwd) + "/x");
    CHECK(p.binds[4].dst == "/x");
    CHECK(p.binds[5].dst == "/work/sub/dir");
}

TEST_CASE("schema errors carry file, line, column, key and expectation") {
    CHECK(first_error("schema = 1\n[filesystem]\ntmp_size = \"512X\"\n").find("t.toml:3:12: filesystem.tmp_size: expected a size") == 0);
    CHECK(first_error("schema = 1\n[user]\nuid = \"x\"\n") == "t.toml:3:7: user.uid: expected an integer id, got a string");
    CHECK(first_error("schema = 1\n[user]\nuid = 0\n").find("user.uid: expected an id from 1") != std::string::npos);
    CHECK(first_error("schema = 1\n[user]\nroot_host_uid = 0\n").find("root is never mapped") != std::string::npos);
    CHECK(first_error("schema = 1\n[runn]\n").find("unknown key; did you mean 'run'?") != std::string::npos);
    CHECK(first_error("schema = 1\n[run]\nexec_allow = [\"python3\"]\n").find("run.exec_allow[0]") != std::string::npos);
    CHECK(first_error("schema = 1\n[run]\nhostname = \"bad host\"\n").find("run.hostname") != std::string::npos);
    CHECK(first_error("schema = 1\n[network]\nmode = \"hots\"\n").find("expected one of none, loopback") != std::string::npos);
    CHECK(first_error("schema = 1\n[env]\nset = { \"1X\" = \"v\" }\n").find("env.set.1X") != std::string::npos);
    CHECK(first_error("schema = 1\n[user]\nhome = \"/tmp\"\n").find("user.home") != std::string::npos);
    CHECK(first_error("schema = 1\nrun = 3\n").find("expected a table") != std::string::npos);
    CHECK(first_error("[run]\n").find("schema: missing") != std::string::npos);
    CHECK(first_error("schema = 2\n").find("unsupported schema") != std::string::npos);
    CHECK(first_error("schema = 1\n[run\n").find("TOML syntax") != std::string::npos);
    CHECK(first_error("schema = 1\nextends = \"nope\"\n").find("unknown profile 'nope'") != std::string::npos);
}

TEST_CASE("all errors are collected, in reading order") {
    auto d = errors_of("schema = 1\n[run]\ncwd = \"rel\"\nhostnme = \"x\"\n[filesystem]\nshm_size = -1\n");
    REQUIRE(d.size() == 3);
    CHECK(d[0].line == 3);
    CHECK(d[1].line == 4);
    CHECK(d[2].line == 6);
}

TEST_CASE("extends from files, relative to the including file, with cycle detection") {
    char tmpl[] = "/tmp/stockade-unit-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir + "/" + name) << text;
        return dir + "/" + name;
    };
    write("base.toml", "schema = 1\nextends = \"python\"\n[run]\nhostname = \"base\"\n");
    std::string child = write("child.toml", "schema = 1\nextends = \"base.toml\"\n[network]\nmode = \"none\"\n");
    std::string a = write("a.toml", "schema = 1\nextends = \"b.toml\"\n");
    write("b.toml", "schema = 1\nextends = \"a.toml\"\n");
    std::string bad = write("bad.toml", "schema = 1\nextends = \"base.toml\"\n[run]\nhostname = 5\n");

    CommandLine cl;
    cl.profile = child;
    Policy p = load(cl);
    CHECK(p.hostname == "base");
    CHECK(p.net == NetMode::None);

    cl.profile = a;
    try {
        load(cl);
        FAIL("expected a cycle");
    } catch (const ProfileError& e) {
        CHECK(e.diagnostics.front().message.find("extends cycle") == 0);
    }
    cl.profile = bad;
    try {
        load(cl);
        FAIL("expected an error");
    } catch (const ProfileError& e) {
        CHECK(e.diagnostics.front().file == bad);  // the error points at the child, not the base
        CHECK(e.diagnostics.front().line == 4);
    }
    for (auto n : {"base.toml", "child.toml", "a.toml", "b.toml", "bad.toml"}) std::remove((dir + "/" + n).c_str());
    rmdir(dir.c_str());
}

TEST_CASE("non-ASCII outside strings is a syntax error, not undefined behaviour in toml++") {
    // Found by fuzz/profile_fuzz: toml++ 3.3.0 reached __builtin_unreachable() here.
    CHECK(first_error("schema = 1\n\xc3\xa9 = 1\n").find("TOML syntax") != std::string::npos);
    CHECK(first_error("schema = 1\n[run]\nhostname = \xd0\x9f\xd1\x80\xd0\xb8\n").find("t.toml:3:12") == 0);
    CHECK(first_error("\"\"\" d+y\\\n\"  =wd\n\xd2\x9b l\n").find("TOML syntax") != std::string::npos);
    // Inside strings and comments it is fine.
    CHECK(first_error("schema = 1\n# \xc3\xa9t\xc3\xa9\ndescription = \"caf\xc3\xa9\"\n").empty());
}

TEST_CASE("the man page names every key of the schema") {
    std::ifstream man(STOCKADE_SOURCE_DIR "/man/stockade-profile.5");
    REQUIRE(man);
    std::stringstream text;
    text << man.rdbuf();
    const std::string page = text.str();
    // The words of the page's .B/.BR lines: where it defines keys.
    std::set<std::string> defined;
    std::istringstream lines(page);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind(".B", 0) != 0) continue;
        std::string word;
        for (char c : line + " ") {
            if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') word += c;
            else if (!word.empty()) defined.insert(std::exchange(word, ""));
        }
    }
    for (const auto& k : stockade::profile::schema_keys()) {
        INFO(k.section << "." << k.key);
        if (*k.section) CHECK(page.find(std::string(".SH [") + k.section + "]") != std::string::npos);
        if (*k.section) CHECK(defined.count(k.key) == 1);
    }
}

TEST_CASE("every limit flag sets a key the schema has") {
    int flags = 0;
    for (const auto& k : stockade::profile::schema_keys())
        if (k.cli_flag) {
            ++flags;
            CHECK(std::string(k.section) == "limits");
            stockade::profile::CommandLine cl;
            cl.sets = {std::string(k.section) + "." + k.key + "=0"};
            CHECK_NOTHROW(stockade::profile::load(cl));
        }
    CHECK(flags == 6);
}

TEST_CASE("defaults: every row's default is a whole value that its own row accepts") {
    // Abbreviations ("[...]", "{...}") would not parse; a default its row
    // refuses would break every profile.
    CHECK_NOTHROW(load_text("schema = 1\n" + defaults_toml(), "defaults.toml"));
    for (const auto& k : schema_keys()) {
        CHECK_MESSAGE(std::string(k.def).find("...") == std::string::npos, k.section, ".", k.key);
    }
}

TEST_CASE("defaults: the man page shows the schema's defaults") {
    std::ifstream man(STOCKADE_SOURCE_DIR "/man/stockade-profile.5");
    REQUIRE(man.good());
    std::stringstream ss;
    ss << man.rdbuf();
    // Lines ".B key = value" and ".BR key " = value", ..."; roff quotes doubled.
    std::string section;
    size_t checked = 0;
    for (std::string line; std::getline(ss, line);) {
        if (line.rfind(".SH [", 0) == 0) section = line.substr(5, line.find(']') - 5);
        std::string body;
        if (line.rfind(".B ", 0) == 0) body = line.substr(3);
        if (line.rfind(".BR ", 0) == 0) {
            body = line.substr(4);
            std::string plain;
            for (size_t i = 0; i < body.size(); ++i) {
                if (body[i] == '"' && i + 1 < body.size() && body[i + 1] == '"') {
                    plain += '"';
                    ++i;
                } else if (body[i] != '"') {
                    plain += body[i];
                }
            }
            body = plain;
        }
        if (section.empty() || body.empty()) continue;
        // "a = 1, b = 2" pairs.
        for (size_t at = 0; at < body.size();) {
            size_t eq = body.find(" = ", at);
            if (eq == std::string::npos) break;
            std::string key = body.substr(at, eq - at);
            key.erase(0, key.find_first_not_of(" ,"));
            size_t end = body.find(", ", eq + 3);
            // Values with commas inside brackets or braces run to the closing one.
            const char open = body[eq + 3];
            if (open == '[' || open == '{') end = body.find(open == '[' ? ']' : '}', eq + 3) + 1;
            if (end == std::string::npos || end > body.size()) end = body.size();
            std::string value = body.substr(eq + 3, end - eq - 3);
            for (const auto& k : schema_keys())
                if (section == k.section && key == k.key) {
                    CHECK_MESSAGE(value == std::string(k.def), section, ".", key, ": man says ", value);
                    ++checked;
                }
            at = end;
        }
    }
    CHECK(checked >= 25);  // the keys the page gives a value for
}

TEST_CASE("each built-in profile's build-time Policy is what its TOML loads to") {
    for (const auto& b : builtins()) {
        CommandLine cl;
        cl.profile = b.name;
        const Policy* ready = precomputed_policy(b.name);
        REQUIRE_MESSAGE(ready != nullptr, b.name);
        CHECK_MESSAGE(*ready == load_parsed(cl), b.name);
        // The command line's additions land on it as on the parsed one.
        cl.ro = {"/etc/hostname:/data/h"};
        cl.env = {"A=1"};
        cl.env_pass = {"HOME"};
        cl.cwd = "/data";
        CHECK_MESSAGE(load(cl) == load_parsed(cl), b.name);
        cl.env = {"1A=1"};
        CHECK_THROWS_AS(load(cl), ProfileError);
    }
    CHECK(precomputed_policy("no-such-profile") == nullptr);
    // A --set of limits reads onto the ready-made Policy as the schema reads it.
    const std::vector<std::vector<std::string>> same = {
        {"limits.memory=0", "limits.pids=0", "limits.cpu=0", "limits.cpu_time=0"},
        {"limits.memory=256M", "limits.memory=1G", "limits.cpu=1.5", "limits.wall_time=2s", "limits.grace=0"},
        {"limits.output=1024", "limits.open_files=64", "limits.stack=1M", "limits.file_size=\"4M\""},
        {"limits.memory=0", "run.cwd=/data"},  // not a limit: the whole table
    };
    for (const char* profile : {"python", "strict"})
        for (const auto& sets : same) {
            CommandLine cl;
            cl.profile = profile;
            cl.sets = sets;
            CHECK_MESSAGE(load(cl) == load_parsed(cl), sets.front());
        }
    CommandLine cl;
    cl.sets = {"limits.memory=0"};
    CHECK(load(cl).limits.memory == 0);
    CHECK(load(CommandLine{}).limits.memory != 0);
    // Refused values are refused the same way, with every other problem.
    for (const std::vector<std::string>& bad : {std::vector<std::string>{"limits.memory=1K"},
                                                {"limits.cpu=2000", "limits.pids=-1"},
                                                {"limits.nope=1"},
                                                {"limits.wall_time=\"forever\""}}) {
        cl.sets = bad;
        std::string fast, slow;
        try {
            load(cl);
        } catch (const ProfileError& e) {
            for (const auto& d : e.diagnostics) fast += d.str() + "\n";
        }
        try {
            load_parsed(cl);
        } catch (const ProfileError& e) {
            for (const auto& d : e.diagnostics) slow += d.str() + "\n";
        }
        CHECK_MESSAGE(!fast.empty(), bad.front());
        CHECK(fast == slow);
    }
}
