#include "mcp/tools.hpp"

#include <algorithm>

namespace stockade::mcp {
namespace {

using nlohmann::json;

// Images under /work/out come back as image content, within these bounds.
constexpr size_t kMaxImages = 4;
constexpr size_t kMaxImageB64 = 2u << 20;
const char* const kImageGlobs[] = {"out/*.png", "out/*.jpg", "out/*.jpeg", "out/*.gif", "out/*.webp", "out/*.svg"};

json files_schema() {
    return {{"type", "object"},
            {"description", "input files, path (relative to /work) -> text, or {\"b64\": BASE64} for binary"},
            {"additionalProperties",
             {{"anyOf", json::array({{{"type", "string"}},
                                     {{"type", "object"},
                                      {"properties", {{"b64", {{"type", "string"}}}}},
                                      {"required", {"b64"}}}})}}}};
}

json timeout_schema() {
    return {{"type", "number"}, {"exclusiveMinimum", 0}, {"description", "seconds (at most the operator's limit)"}};
}

const json kNullableInt = {{"type", json::array({"integer", "null"})}};

json run_output_schema() {
    return {{"type", "object"},
            {"properties",
             {{"status", {{"type", "string"}, {"description", "ok, exit_nonzero, signaled, timeout_wall, timeout_cpu, oom, pids_limit, output_limit, seccomp_violation, setup_error"}}},
              {"exit_code", kNullableInt},
              {"signal", kNullableInt},
              {"stdout", {{"type", "string"}}},
              {"stderr", {{"type", "string"}}},
              {"wall_ms", {{"type", "number"}}},
              {"cpu_user_ms", {{"type", "number"}}},
              {"cpu_sys_ms", {{"type", "number"}}},
              {"violations", {{"type", "array"}}},
              {"network", {{"type", "array"}}},
              {"files", {{"type", "object"}}},
              {"warm", {{"type", "boolean"}}}}},
            {"required", {"status", "stdout", "stderr"}}};
}

json cell_output_schema() {
    return {{"type", "object"},
            {"properties",
             {{"session", {{"type", "string"}}},
              {"stdout", {{"type", "string"}}},
              {"stderr", {{"type", "string"}}},
              {"value", {{"type", json::array({"string", "null"})}, {"description", "repr of the last expression"}}},
              {"error", {{"type", json::array({"object", "null"})}, {"description", "type, message, traceback"}}},
              {"files", {{"type", "object"}}}}},
            {"required", {"session", "stdout", "stderr", "value", "error"}}};
}

std::string cap(const std::string& s, size_t n) {
    return s.size() <= n ? s : s.substr(0, n) + "\n[... " + std::to_string(s.size() - n) + " more bytes]";
}

const std::string& str(const json& j, const char* key) {
    static const std::string empty;
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get_ref<const std::string&>() : empty;
}

std::string mime_of(const std::string& path) {
    auto ends = [&](const char* e) {
        std::string x(e);
        return path.size() >= x.size() && path.compare(path.size() - x.size(), x.size(), x) == 0;
    };
    if (ends(".png")) return "image/png";
    if (ends(".jpg") || ends(".jpeg")) return "image/jpeg";
    if (ends(".gif")) return "image/gif";
    if (ends(".webp")) return "image/webp";
    if (ends(".svg")) return "image/svg+xml";
    return {};
}

json files_arg(const json& args) {
    json files = json::object();
    if (auto f = args.find("files"); f != args.end() && !f->is_null()) {
        if (!f->is_object()) throw ToolError("files: expected an object of path -> text or {\"b64\": ...}");
        files = *f;
    }
    return files;
}

void timeout_arg(const json& args, json& req) {
    if (auto t = args.find("timeout_s"); t != args.end() && !t->is_null()) {
        if (!t->is_number() || !(t->get<double>() > 0)) throw ToolError("timeout_s: expected a number of seconds above 0");
        req["timeout"] = *t;
    }
}

std::string code_arg(const json& args, bool required) {
    auto c = args.find("code");
    if (c == args.end() || c->is_null()) {
        if (required) throw ToolError("code: required (the Python source to run)");
        return {};
    }
    if (!c->is_string()) throw ToolError("code: expected a string of Python source");
    return c->get<std::string>();
}

std::string session_arg(const json& args) {
    auto s = args.find("session");
    if (s == args.end() || !s->is_string()) throw ToolError("session: required (the id python_session_open returned)");
    return s->get<std::string>();
}

}  // namespace

json tool_list(const std::vector<std::string>& modes) {
    json run_props = {{"code", {{"type", "string"}, {"description", "Python source, run as __main__ in /work"}}},
                      {"files", files_schema()},
                      {"timeout_s", timeout_schema()}};
    if (modes.size() > 1)
        run_props["network"] = {{"type", "string"}, {"enum", modes}, {"description", "network mode (default " + modes[0] + ")"}};
    json tools = json::array();
    tools.push_back(
        {{"name", "run_python"},
         {"title", "Run Python in a jail"},
         {"description",
          "Run Python 3 code in a fresh, isolated jail (no host files, network: " + modes[0] +
              ", limits on memory, processes and time). Input files land in /work; images saved under /work/out "
              "come back as images. Returns stdout, stderr, the status and what was refused."},
         {"inputSchema", {{"type", "object"}, {"properties", run_props}, {"required", {"code"}}, {"additionalProperties", false}}},
         {"outputSchema", run_output_schema()},
         {"annotations", {{"readOnlyHint", false}, {"destructiveHint", false}, {"openWorldHint", modes[0] != "none"}}}});
    tools.push_back({{"name", "python_session_open"},
                     {"title", "Open a Python session"},
                     {"description", "Open a notebook-like Python session: variables and imports persist across python_session_run calls."},
                     {"inputSchema", {{"type", "object"}, {"properties", json::object()}, {"additionalProperties", false}}},
                     {"outputSchema", {{"type", "object"}, {"properties", {{"session", {{"type", "string"}}}}}, {"required", {"session"}}}}});
    tools.push_back(
        {{"name", "python_session_run"},
         {"title", "Run a cell in a Python session"},
         {"description", "Run code in an open session; returns its output, the repr of its last expression, and any exception with its traceback."},
         {"inputSchema",
          {{"type", "object"},
           {"properties", {{"session", {{"type", "string"}}}, {"code", {{"type", "string"}}}, {"files", files_schema()}, {"timeout_s", timeout_schema()}}},
           {"required", {"session", "code"}},
           {"additionalProperties", false}}},
         {"outputSchema", cell_output_schema()}});
    tools.push_back({{"name", "python_session_close"},
                     {"title", "Close a Python session"},
                     {"description", "Close a session and destroy its jail."},
                     {"inputSchema", {{"type", "object"}, {"properties", {{"session", {{"type", "string"}}}}}, {"required", {"session"}}, {"additionalProperties", false}}},
                     {"outputSchema", {{"type", "object"}, {"properties", {{"closed", {{"type", "string"}}}}}, {"required", {"closed"}}}}});
    return {{"tools", tools}};
}

ServeCall to_serve(const std::string& tool, const json& a, const std::vector<std::string>& modes) {
    const json args = a.is_object() ? a : json::object();
    ServeCall c;
    c.mode = modes.front();
    json& r = c.request;
    if (tool == "run_python") {
        for (const auto& [k, v] : args.items())
            if (k != "code" && k != "files" && k != "timeout_s" && k != "network")
                throw ToolError("unknown argument \"" + k + "\" (run_python takes code, files, timeout_s, network)");
        r = {{"op", "run"}, {"code", code_arg(args, true)}, {"files", files_arg(args)}};
        json ret = json::array();
        for (const char* g : kImageGlobs) ret.push_back(g);
        r["return_files"] = ret;
        timeout_arg(args, r);
        if (auto n = args.find("network"); n != args.end() && !n->is_null()) {
            if (!n->is_string() || std::find(modes.begin(), modes.end(), n->get<std::string>()) == modes.end()) {
                std::string allowed;
                for (const auto& m : modes) allowed += (allowed.empty() ? "" : ", ") + m;
                throw ToolError("network: the operator allows only: " + allowed);
            }
            c.mode = n->get<std::string>();
        }
    } else if (tool == "python_session_open") {
        r = {{"op", "session.open"}};
    } else if (tool == "python_session_run") {
        r = {{"op", "session.run"}, {"session", session_arg(args)}, {"code", code_arg(args, true)}, {"files", files_arg(args)}};
        timeout_arg(args, r);
    } else if (tool == "python_session_close") {
        r = {{"op", "session.close"}, {"session", session_arg(args)}};
    } else {
        throw UnknownTool("unknown tool: " + tool);
    }
    return c;
}

json tool_error(const std::string& message) {
    return {{"content", json::array({{{"type", "text"}, {"text", message}}})}, {"isError", true}};
}

json to_result(const std::string& tool, const json& ans) {
    if (auto e = ans.find("error"); e != ans.end() && e->is_object() && e->contains("code"))
        return tool_error(str(*e, "code") + ": " + str(*e, "message"));
    json content = json::array();
    json sc;
    bool failed = false;
    if (tool == "run_python") {
        sc = ans;
        sc.erase("id");
        json files = json::object();
        size_t images = 0;
        std::string listed;
        if (auto f = ans.find("files"); f != ans.end() && f->is_object()) {
            for (const auto& [path, v] : f->items()) {
                if (!v.is_object() || v.contains("error")) continue;
                std::string mime = mime_of(path);
                if (mime.empty() || images >= kMaxImages) continue;
                std::string data;
                if (v.contains("b64")) data = str(v, "b64");
                else {
                    // An SVG (text) as base64.
                    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                    const std::string& t = str(v, "text");
                    for (size_t i = 0; i < t.size(); i += 3) {
                        unsigned n = static_cast<unsigned char>(t[i]) << 16;
                        if (i + 1 < t.size()) n |= static_cast<unsigned char>(t[i + 1]) << 8;
                        if (i + 2 < t.size()) n |= static_cast<unsigned char>(t[i + 2]);
                        data += tbl[(n >> 18) & 63];
                        data += tbl[(n >> 12) & 63];
                        data += i + 1 < t.size() ? tbl[(n >> 6) & 63] : '=';
                        data += i + 2 < t.size() ? tbl[n & 63] : '=';
                    }
                }
                if (data.size() > kMaxImageB64) continue;
                content.push_back({{"type", "image"}, {"data", data}, {"mimeType", mime}});
                files[path] = {{"image", mime}, {"b64_bytes", data.size()}};
                listed += " /work/" + path;
                ++images;
            }
        }
        sc["files"] = files;
        const std::string status = str(ans, "status");
        failed = status != "ok";
        std::string text = "status: " + status;
        if (ans.contains("exit_code") && ans["exit_code"].is_number()) text += " (exit code " + ans["exit_code"].dump() + ")";
        if (ans.contains("signal") && ans["signal"].is_number()) text += " (signal " + ans["signal"].dump() + ")";
        if (!str(ans, "stdout").empty()) text += "\n--- stdout ---\n" + cap(str(ans, "stdout"), 20000);
        if (!str(ans, "stderr").empty()) text += "\n--- stderr ---\n" + cap(str(ans, "stderr"), 20000);
        if (auto v = ans.find("violations"); v != ans.end() && v->is_array() && !v->empty()) {
            text += "\n--- refused by the jail ---\n";
            for (const auto& x : *v) text += str(x, "syscall") + (x.contains("errno") && x["errno"].is_string() ? " -> " + str(x, "errno") : "") + "\n";
        }
        if (auto n = ans.find("network"); n != ans.end() && n->is_array())
            for (const auto& x : *n)
                if (x.contains("allowed") && x["allowed"].is_boolean() && !x["allowed"].get<bool>())
                    text += "network refused: " + str(x, "host") + " (" + str(x, "reason") + ")\n";
        if (!listed.empty()) text += "\nimages:" + listed;
        content.insert(content.begin(), json{{"type", "text"}, {"text", text}});
    } else if (tool == "python_session_run") {
        sc = {{"session", str(ans, "session")}, {"stdout", str(ans, "stdout")}, {"stderr", str(ans, "stderr")},
              {"value", ans.value("value", json(nullptr))}, {"error", ans.value("error", json(nullptr))},
              {"files", ans.value("files", json::object())}};
        failed = !sc["error"].is_null();
        std::string text;
        if (!str(ans, "stdout").empty()) text += cap(str(ans, "stdout"), 20000);
        if (!str(ans, "stderr").empty()) text += (text.empty() ? "" : "\n") + std::string("--- stderr ---\n") + cap(str(ans, "stderr"), 20000);
        if (sc["value"].is_string()) text += (text.empty() ? "" : "\n") + std::string("=> ") + cap(sc["value"].get<std::string>(), 20000);
        if (failed) text += (text.empty() ? "" : "\n") + str(sc["error"], "traceback");
        if (text.empty()) text = "(no output)";
        content.push_back({{"type", "text"}, {"text", text}});
    } else if (tool == "python_session_open") {
        sc = {{"session", str(ans, "session")}};
        content.push_back({{"type", "text"}, {"text", "session " + str(ans, "session") + " is open"}});
    } else {
        sc = {{"closed", str(ans, "closed")}};
        content.push_back({{"type", "text"}, {"text", "session " + str(ans, "closed") + " is closed"}});
    }
    return {{"content", content}, {"structuredContent", sc}, {"isError", failed}};
}

}  // namespace stockade::mcp
