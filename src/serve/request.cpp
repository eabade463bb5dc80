#include "serve/request.hpp"

#include <cmath>

#include "profile/limits.hpp"
#include "util/json_out.hpp"

namespace stockade::serve {
namespace {

using nlohmann::json;

constexpr size_t kMaxFiles = kMaxReturnFiles;
constexpr size_t kMaxPath = 4096;

[[noreturn]] void bad(const std::string& msg) { throw RequestError("bad_request", msg); }

bool valid_base64(const std::string& s) {
    if (s.size() % 4) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (c == '=' && i + 2 >= s.size()) ok = i + 1 == s.size() || s[i + 1] == '=';
        if (!ok) return false;
    }
    return true;
}

// "text" or {"text": ...} or {"b64": ...} -> the runner's {"text"}/{"b64"},
// taking the string out of v.
json content(json& v, const std::string& what, size_t& bytes) {
    auto take = [&bytes](const char* kind, json& s) {
        bytes += s.get_ref<const std::string&>().size() + 16;
        json out = json::object();
        out[kind] = std::move(s);
        return out;
    };
    if (v.is_string()) return take("text", v);
    if (v.is_object() && v.size() == 1) {
        if (auto t = v.find("text"); t != v.end() && t->is_string()) return take("text", *t);
        if (auto b = v.find("b64"); b != v.end() && b->is_string()) {
            if (!valid_base64(b->get_ref<const std::string&>())) bad(what + ": \"b64\" is not valid base64");
            return take("b64", *b);
        }
    }
    bad(what + ": expected a string, {\"text\": STRING} or {\"b64\": BASE64}");
}

void check_path(const std::string& p, const std::string& what) {
    if (p.empty() || p.size() > kMaxPath || p.find('\0') != std::string::npos)
        bad(what + ": expected a non-empty path without NUL, at most 4096 bytes");
}

uint64_t timeout_ms(const json& req, const profile::Limits& lim) {
    auto t = req.find("timeout");
    if (t == req.end() || t->is_null()) return 0;
    if (!t->is_number() || !(t->get<double>() > 0) || !std::isfinite(t->get<double>()))
        bad("timeout: expected a number of seconds above 0");
    double ms = t->get<double>() * 1000.0;
    if (lim.wall_ms && ms > static_cast<double>(lim.wall_ms))
        bad("timeout: " + t->dump() + " s is above the profile's wall_time (" + json(lim.wall_ms / 1000.0).dump() +
            " s); a request may only lower it");
    return std::max<uint64_t>(1, static_cast<uint64_t>(ms));
}

}  // namespace

std::string string_field(const json& req, const char* key, bool required) {
    auto v = req.find(key);
    if (v == req.end() || v->is_null()) {
        if (required) bad(std::string(key) + ": required (a string)");
        return {};
    }
    if (!v->is_string()) bad(std::string(key) + ": expected a string");
    return v->get<std::string>();
}

Task parse_task(json& req, bool cell, const profile::Limits& lim) {
    static const char* run_keys[] = {"id",    "op",           "code",    "script", "argv",   "stdin",
                                     "files", "return_files", "timeout", "limits", "session"};
    for (const auto& [k, v] : req.items()) {
        bool known = false;
        for (const char* rk : run_keys) known |= k == rk;
        if (!known)
            bad("unknown field \"" + k +
                "\" (expected one of: code, script, argv, stdin, files, return_files, timeout, limits)");
    }
    Task t;
    json m = json::object();
    m["op"] = cell ? "cell" : "run";
    // The bytes moved in, which the encoded line will be at least.
    size_t bytes = 256;
    auto cv = req.find("code");
    const bool has_code = cv != req.end() && !cv->is_null();
    if (has_code && !cv->is_string()) bad("code: expected a string");
    const bool no_code = !has_code || cv->get_ref<const std::string&>().empty();
    const std::string script = cell ? std::string() : string_field(req, "script", false);
    if (cell && req.contains("script")) bad("script: not for session.run (send code)");
    if (no_code == script.empty() && !(cell && no_code && req.contains("code")))
        bad(cell ? "code: required (a string)" : "expected exactly one of code or script");
    if (!script.empty()) {
        check_path(script, "script");
        m["script"] = script;
    } else {
        bytes += has_code ? cv->get_ref<const std::string&>().size() : 0;
        m["code"] = has_code ? std::move(*cv) : json("");
    }
    if (auto a = req.find("argv"); a != req.end() && !a->is_null()) {
        if (cell) bad("argv: not for session.run");
        if (!a->is_array()) bad("argv: expected an array of strings");
        for (const auto& s : *a)
            if (!s.is_string()) bad("argv: expected an array of strings");
        m["argv"] = *a;
    }
    if (auto s = req.find("stdin"); s != req.end() && !s->is_null()) {
        if (cell) bad("stdin: not for session.run");
        m["stdin"] = content(*s, "stdin", bytes);
    }
    json files = json::object();
    if (auto f = req.find("files"); f != req.end() && !f->is_null()) {
        if (!f->is_object()) bad("files: expected an object of path -> content");
        if (f->size() > kMaxFiles) bad("files: at most 1000 files");
        for (auto& [path, v] : f->items()) {
            check_path(path, "files: \"" + path.substr(0, 64) + "\"");
            bytes += path.size() + 16;
            files[path] = content(v, "files[\"" + path.substr(0, 64) + "\"]", bytes);
        }
    }
    if (!script.empty() && !files.contains(script)) bad("script: \"" + script + "\" is not among files");
    m["files"] = std::move(files);
    json ret = json::array();
    if (auto r = req.find("return_files"); r != req.end() && !r->is_null()) {
        if (!r->is_array() || r->size() > kMaxFiles) bad("return_files: expected an array of at most 1000 paths");
        for (const auto& p : *r) {
            if (!p.is_string()) bad("return_files: expected an array of paths (strings)");
            check_path(p.get<std::string>(), "return_files");
            bytes += p.get_ref<const std::string&>().size() + 4;
            ret.push_back(p);
        }
    }
    m["return_files"] = std::move(ret);
    m["return_cap"] = kReturnCap;
    t.timeout_ms = timeout_ms(req, lim);
    if (auto l = req.find("limits"); l != req.end() && !l->is_null()) {
        if (cell) bad("limits: set them at session.open");
        if (!l->is_object()) bad("limits: expected an object of profile [limits] keys");
        for (const auto& [k, v] : l->items()) {
            std::string value;
            if (v.is_string())
                value = v.get<std::string>();
            else if (v.is_number() || v.is_boolean())
                value = v.dump();
            else
                bad("limits." + k + ": expected a string, number or boolean");
            t.limit_sets.push_back("limits." + k + "=" + value);
        }
    }
    // Encoded into room made once for it: growing a string of megabytes by
    // doubling copies it, and faults in each new block, over and over.
    t.to_runner.reserve(bytes + bytes / 8);
    append_json(t.to_runner, m);
    t.to_runner += '\n';
    return t;
}

void check_lowered(const profile::Limits& base, const profile::Limits& asked) {
    for (const auto& row : profile::limit_rows()) {
        const double b = profile::limit_value(base, row), a = profile::limit_value(asked, row);
        // Where 0 lifts the limit, a request may not ask for 0 below a set one.
        const bool lower = row.zero_lifts ? (b == 0 || (a != 0 && a <= b)) : a <= b;
        if (!lower) bad(std::string("limits.") + row.key + ": a request may only lower the server's profile limit");
    }
    if (base.output_kill && !asked.output_kill) bad("limits.output_action: the server's profile kills at the cap");
    if (base.require_cgroup && !asked.require_cgroup)
        bad("limits.require_cgroup: the server's profile requires a cgroup");
}

}  // namespace stockade::serve
