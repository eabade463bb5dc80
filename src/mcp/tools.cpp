#include "mcp/tools.hpp"

#include <algorithm>

#include "report/result.hpp"
#include "util/error.hpp"

namespace stockade::mcp {
namespace {

using nlohmann::json;

// Candidates for image content: what a task saves under /work/out. Their
// type is decided by their bytes, not their names.
const char* const kImageGlobs[] = {"out/*.png", "out/*.jpg", "out/*.jpeg", "out/*.gif", "out/*.webp"};

json files_schema() {
    return {{"type", "object"},
            {"description", "input files, path (relative to /work) -> text, or {\"b64\": BASE64} for binary"},
            {"additionalProperties",
             {{"anyOf",
               json::array(
                   {{{"type", "string"}},
                    {{"type", "object"}, {"properties", {{"b64", {{"type", "string"}}}}}, {"required", {"b64"}}}})}}}};
}

json timeout_schema(uint64_t wall_ms) {
    json t = {{"type", "number"}, {"exclusiveMinimum", 0}};
    if (wall_ms) {
        const double s = static_cast<double>(wall_ms) / 1000.0;
        t["maximum"] = s;
        const std::string shown = wall_ms % 1000 == 0 ? std::to_string(wall_ms / 1000) : json(s).dump();
        t["description"] = "seconds; at most " + shown + " (the operator's limit, also the default)";
    } else {
        t["description"] = "seconds (no limit by default)";
    }
    return t;
}

const json kNullableInt = {{"type", json::array({"integer", "null"})}};

json output_props() {
    return {{"stdout", {{"type", "string"}, {"description", "all of it, or its head and tail when truncated"}}},
            {"stderr", {{"type", "string"}}},
            {"stdout_bytes", {{"type", "integer"}}},
            {"stderr_bytes", {{"type", "integer"}}},
            {"truncated",
             {{"type", "boolean"}, {"description", "the output shown here is cut; output_resources has all of it"}}},
            {"output_resources", {{"type", "array"}, {"items", {{"type", "string"}}}}}};
}

json run_output_schema() {
    json props = output_props();
    props.update({{"status", {{"type", "string"}, {"description", report::status_names()}}},
                  {"exit_code", kNullableInt},
                  {"signal", kNullableInt},
                  {"wall_ms", {{"type", "number"}}},
                  {"cpu_user_ms", {{"type", "number"}}},
                  {"cpu_sys_ms", {{"type", "number"}}},
                  {"violations", {{"type", "array"}}},
                  {"network", {{"type", "array"}}},
                  {"files", {{"type", "object"}}},
                  {"warm", {{"type", "boolean"}}}});
    return {{"type", "object"}, {"properties", props}, {"required", {"status", "stdout", "stderr"}}};
}

json cell_output_schema() {
    json props = output_props();
    props.update(
        {{"session", {{"type", "string"}}},
         {"value", {{"type", json::array({"string", "null"})}, {"description", "repr of the last expression"}}},
         {"error", {{"type", json::array({"object", "null"})}, {"description", "type, message, traceback"}}},
         {"timeout", {{"type", "boolean"}}},
         {"files", {{"type", "object"}}}});
    return {{"type", "object"}, {"properties", props}, {"required", {"session", "stdout", "stderr", "value", "error"}}};
}

const std::string& str(const json& j, const char* key) {
    static const std::string empty;
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get_ref<const std::string&>() : empty;
}

std::string b64_decode(const std::string& in) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    unsigned buf = 0;
    int bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) continue;
        buf = (buf << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buf >> bits) & 0xFF);
        }
    }
    return out;
}

json files_arg(const json& args) {
    json files = json::object();
    if (auto f = args.find("files"); f != args.end() && !f->is_null()) {
        if (!f->is_object()) throw ToolError("files: expected an object of path -> text or {\"b64\": ...}");
        files = *f;
    }
    return files;
}

void timeout_arg(const json& args, json& req, const ToolConfig& cfg) {
    if (auto t = args.find("timeout_s"); t != args.end() && !t->is_null()) {
        if (!t->is_number() || !(t->get<double>() > 0))
            throw ToolError("timeout_s: expected a number of seconds above 0");
        if (cfg.wall_ms && t->get<double>() * 1000.0 > static_cast<double>(cfg.wall_ms))
            throw ToolError("timeout_s: at most " + json(static_cast<double>(cfg.wall_ms) / 1000.0).dump() +
                            " (the operator's limit)");
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

json image_globs() {
    json ret = json::array();
    for (const char* g : kImageGlobs) ret.push_back(g);
    return ret;
}

// stdout and stderr into sc (head and tail past the bound, the whole kept in
// outputs) and into the text a model reads.
void add_output(const json& ans, json& sc, std::string& text, Outputs& outputs) {
    bool truncated = false;
    json resources = json::array();
    for (const char* stream : {"stdout", "stderr"}) {
        const std::string& all = str(ans, stream);
        if (!ans.contains(std::string(stream) + "_bytes")) sc[std::string(stream) + "_bytes"] = all.size();
        std::string shown = all;
        if (all.size() > kInlineOutput) {
            truncated = true;
            std::vector<std::string> uris = outputs.keep(stream, all);
            for (const auto& u : uris) resources.push_back(u);
            shown =
                utf8_head(all, kInlineOutput / 2) + "\n[... " + std::to_string(all.size()) + " bytes in all; " +
                (uris.empty() ? std::string("the rest was not kept")
                              : "the whole is in " + std::to_string(uris.size()) + " resource(s) " + uris.front() +
                                    (uris.size() > 1 ? " ... " + uris.back() : std::string()) + " (resources/read)") +
                " ...]\n" + utf8_tail(all, kInlineOutput / 2);
        }
        sc[stream] = shown;
        if (!shown.empty()) text += std::string(text.empty() ? "" : "\n") + "--- " + stream + " ---\n" + shown;
    }
    if (ans.contains("truncated") && ans["truncated"].is_boolean() && ans["truncated"].get<bool>())
        text += "\n(the output reached the jail's output limit and was cut there)";
    sc["truncated"] = truncated;
    if (truncated) sc["output_resources"] = resources;
}

// Images among the returned files, by their bytes, within the bounds.
void add_images(const json& ans, json& sc, json& content, std::string& text) {
    json files = json::object();
    size_t count = 0, used = 0;
    std::string listed;
    if (auto f = ans.find("files"); f != ans.end() && f->is_object()) {
        for (const auto& [path, v] : f->items()) {
            if (!v.is_object() || v.contains("error") || count >= kMaxImages) continue;
            if (!v.contains("b64")) {  // it read as text: no image is
                files[path] = {{"skipped", "not a PNG, JPEG, GIF or WebP image"}};
                continue;
            }
            const std::string& data = str(v, "b64");
            const std::string mime = image_type(b64_decode(data.substr(0, 64)));
            if (mime.empty()) {
                files[path] = {{"skipped", "not a PNG, JPEG, GIF or WebP image"}};
                continue;
            }
            if (used + data.size() > kMaxImagesB64) {
                files[path] = {{"skipped", "over the 4 MiB of images one result may carry"}};
                continue;
            }
            used += data.size();
            content.push_back({{"type", "image"}, {"data", data}, {"mimeType", mime}});
            files[path] = {{"image", mime}, {"b64_bytes", data.size()}};
            listed += " /work/" + path;
            ++count;
        }
    }
    sc["files"] = files;
    if (!listed.empty()) text += "\nimages:" + listed;
}

// "30", "0.5": as a person writes seconds.
std::string seconds(uint64_t ms) {
    return ms % 1000 == 0 ? std::to_string(ms / 1000) : json(static_cast<double>(ms) / 1000.0).dump();
}

}  // namespace

std::string image_type(const std::string& b) {
    auto starts = [&](const char* m, size_t n, size_t at = 0) {
        return b.size() >= at + n && b.compare(at, n, m, n) == 0;
    };
    if (starts("\x89PNG\r\n\x1a\n", 8)) return "image/png";
    if (starts("\xff\xd8\xff", 3)) return "image/jpeg";
    if (starts("GIF87a", 6) || starts("GIF89a", 6)) return "image/gif";
    if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return "image/webp";
    return {};
}

json tool_list(const ToolConfig& cfg) {
    const auto& modes = cfg.network_modes;
    json run_props = {{"code", {{"type", "string"}, {"description", "Python source, run as __main__ in /work"}}},
                      {"files", files_schema()},
                      {"timeout_s", timeout_schema(cfg.wall_ms)}};
    if (modes.size() > 1)
        run_props["network"] = {
            {"type", "string"}, {"enum", modes}, {"description", "network mode (default " + modes[0] + ")"}};
    const std::string limit = cfg.wall_ms ? " Each call may run for at most " + seconds(cfg.wall_ms) + " s." : "";
    json tools = json::array();
    tools.push_back(
        {{"name", "run_python"},
         {"title", "Run Python in a jail"},
         {"description",
          "Run Python 3 code in a fresh, isolated jail (no host files, network: " + modes[0] +
              ", limits on memory, processes and time)." + limit +
              " Input files land in /work; PNG, JPEG, GIF "
              "or WebP images saved under /work/out come back as images. Returns stdout, stderr, the status and "
              "what was refused."},
         {"inputSchema",
          {{"type", "object"}, {"properties", run_props}, {"required", {"code"}}, {"additionalProperties", false}}},
         {"outputSchema", run_output_schema()},
         {"annotations",
          {{"readOnlyHint", false}, {"destructiveHint", false}, {"openWorldHint", modes[0] != "none"}}}});
    tools.push_back(
        {{"name", "python_session_open"},
         {"title", "Open a Python session"},
         {"description",
          "Open a notebook-like Python session: variables and imports persist across python_session_run calls."},
         {"inputSchema", {{"type", "object"}, {"properties", json::object()}, {"additionalProperties", false}}},
         {"outputSchema",
          {{"type", "object"}, {"properties", {{"session", {{"type", "string"}}}}}, {"required", {"session"}}}}});
    tools.push_back({{"name", "python_session_run"},
                     {"title", "Run a cell in a Python session"},
                     {"description",
                      "Run code in an open session; returns its output, the repr of its last expression, any "
                      "exception with its traceback, and images saved under /work/out." +
                          limit + " A cell past its time limit is interrupted and the session kept."},
                     {"inputSchema",
                      {{"type", "object"},
                       {"properties",
                        {{"session", {{"type", "string"}}},
                         {"code", {{"type", "string"}}},
                         {"files", files_schema()},
                         {"timeout_s", timeout_schema(cfg.wall_ms)}}},
                       {"required", {"session", "code"}},
                       {"additionalProperties", false}}},
                     {"outputSchema", cell_output_schema()}});
    tools.push_back(
        {{"name", "python_session_close"},
         {"title", "Close a Python session"},
         {"description", "Close a session and destroy its jail."},
         {"inputSchema",
          {{"type", "object"},
           {"properties", {{"session", {{"type", "string"}}}}},
           {"required", {"session"}},
           {"additionalProperties", false}}},
         {"outputSchema",
          {{"type", "object"}, {"properties", {{"closed", {{"type", "string"}}}}}, {"required", {"closed"}}}}});
    return {{"tools", tools}};
}

ServeCall to_serve(const std::string& tool, const json& a, const ToolConfig& cfg) {
    const auto& modes = cfg.network_modes;
    const json args = a.is_object() ? a : json::object();
    ServeCall c;
    c.mode = modes.front();
    json& r = c.request;
    if (tool == "run_python") {
        for (const auto& [k, v] : args.items())
            if (k != "code" && k != "files" && k != "timeout_s" && k != "network")
                throw ToolError("unknown argument \"" + k + "\" (run_python takes code, files, timeout_s, network)");
        r = {
            {"op", "run"}, {"code", code_arg(args, true)}, {"files", files_arg(args)}, {"return_files", image_globs()}};
        timeout_arg(args, r, cfg);
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
        r = {{"op", "session.run"},
             {"session", session_arg(args)},
             {"code", code_arg(args, true)},
             {"files", files_arg(args)},
             {"return_files", image_globs()}};
        timeout_arg(args, r, cfg);
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

json to_result(const std::string& tool, const json& ans, const ServeCall& call, const ToolConfig& cfg,
               Outputs& outputs) {
    const uint64_t limit_ms = call.request.contains("timeout") && call.request["timeout"].is_number()
                                  ? static_cast<uint64_t>(call.request["timeout"].get<double>() * 1000.0)
                                  : cfg.wall_ms;
    if (auto e = ans.find("error"); e != ans.end() && e->is_object() && e->contains("code")) {
        std::string msg = str(*e, "code") + ": " + str(*e, "message");
        if (tool == "python_session_run" && (ans.contains("stdout") || ans.contains("stderr"))) {
            // The session's jail ended during the cell: what it printed first still counts.
            json sc = json::object();
            std::string text;
            add_output(ans, sc, text, outputs);
            if (!text.empty()) msg += "\n" + text;
        }
        return tool_error(msg);
    }
    json content = json::array();
    json sc;
    bool failed = false;
    std::string text;
    if (tool == "run_python") {
        sc = ans;
        sc.erase("id");
        // Operator matters (what degraded on this host, the supervisor's own
        // figures) are the operator's: mcp says them once, on stderr.
        sc.erase("degraded");
        sc.erase("supervisor");
        // serve's answer is a stockade result: read as the one Result type.
        const report::Result r = report::result_from_json(ans);
        failed = r.status != report::Status::Ok;
        text = std::string("status: ") + report::to_string(r.status);
        if (r.exit_code) text += " (exit code " + std::to_string(*r.exit_code) + ")";
        if (r.signal) text += " (signal " + std::to_string(*r.signal) + ")";
        if (r.status == report::Status::TimeoutWall && limit_ms)
            text += "\nThe run reached its time limit of " + seconds(limit_ms) + " s and was stopped.";
        if (r.status == report::Status::TimeoutCpu) text += "\nThe run used up its CPU time limit and was stopped.";
        std::string out;
        add_output(ans, sc, out, outputs);
        text += out;
        if (!r.violations.empty()) {
            text += "\n--- refused by the jail ---\n";
            for (const auto& v : r.violations) text += v.name + (v.killed ? "" : " -> " + errno_name(v.err)) + "\n";
        }
        for (const auto& n : r.network)
            if (!n.allowed) text += "\nnetwork refused by the jail's policy: " + n.host + " (" + n.reason + ")";
        const std::string& err = str(ans, "stderr");
        if (call.mode != "host" && call.mode != "proxy" &&
            (err.find("Temporary failure in name resolution") != std::string::npos ||
             err.find("Name or service not known") != std::string::npos ||
             err.find("Network is unreachable") != std::string::npos))
            text += "\nnote: this jail's network mode is \"" + call.mode +
                    "\": names are not resolved and nothing outside the jail is reached. The network policy "
                    "refused it, not the remote host.";
        add_images(ans, sc, content, text);
    } else if (tool == "python_session_run") {
        sc = {{"session", str(ans, "session")},
              {"value", ans.value("value", json(nullptr))},
              {"error", ans.value("error", json(nullptr))}};
        failed = !sc["error"].is_null();
        add_output(ans, sc, text, outputs);
        if (sc["value"].is_string())
            text += (text.empty() ? "" : "\n") + std::string("=> ") +
                    utf8_head(sc["value"].get<std::string>(), kInlineOutput);
        if (ans.value("timeout", false)) {
            sc["timeout"] = true;
            text += (text.empty() ? "" : "\n") + std::string("The cell reached its time limit of ") +
                    seconds(limit_ms) +
                    " s and was interrupted (KeyboardInterrupt). The session and its variables are kept.";
        } else if (failed) {
            text += (text.empty() ? "" : "\n") + str(sc["error"], "traceback");
        }
        add_images(ans, sc, content, text);
        if (text.empty()) text = "(no output)";
    } else if (tool == "python_session_open") {
        sc = {{"session", str(ans, "session")}};
        text = "session " + str(ans, "session") + " is open";
    } else {
        sc = {{"closed", str(ans, "closed")}};
        text = "session " + str(ans, "closed") + " is closed";
    }
    content.insert(content.begin(), json{{"type", "text"}, {"text", text}});
    return {{"content", content}, {"structuredContent", sc}, {"isError", failed}};
}

}  // namespace stockade::mcp
