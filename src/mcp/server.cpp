#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "mcp/backend.hpp"
#include "mcp/mcp.hpp"
#include "mcp/tools.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"

#ifndef STOCKADE_VERSION
#define STOCKADE_VERSION "0.0.0"
#endif

namespace stockade::mcp {
namespace {

using nlohmann::json;

// Newest first: a client asking for one of these gets it; any other gets the newest.
const char* const kVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
constexpr size_t kMaxLine = 64u << 20;

// One tools/call in flight: its own connection to serve, so a cancel (or
// our exit) closes it and serve kills the run.
struct Call {
    json rpc_id;
    std::string tool;
    UniqueFd fd;
    std::string out, in;
    json progress_token;
    uint64_t next_progress_ns = 0;
    int progress = 0;
};

class Server {
public:
    explicit Server(const McpOptions& opt) : opt_(opt), backend_(opt.serve_args, opt.network_modes) {}

    int run() {
        backend_.wait_ready(60000);
        std::cerr << "stockade mcp: ready (network " << opt_.network_modes.front() << ")\n";
        while (!eof_ || !calls_.empty()) {
            if (eof_) break;  // stdin closed: nobody waits for the answers; the runs end with us
            std::vector<pollfd> fds;
            fds.push_back({0, POLLIN, 0});
            std::vector<std::string> keys;
            for (auto& [k, c] : calls_) {
                fds.push_back({c->fd.get(), static_cast<short>(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
                keys.push_back(k);
            }
            int timeout = calls_.empty() ? -1 : 1000;
            if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) throw_sys("poll");
            if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) read_stdin();
            for (size_t i = 1; i < fds.size(); ++i) {
                auto it = calls_.find(keys[i - 1]);
                if (it == calls_.end()) continue;
                if (fds[i].revents & POLLOUT) flush(*it->second);
                if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                    if (read_call(*it->second)) calls_.erase(it);
                }
            }
            progress();
            if (backend_.ended() >= 0) {
                for (auto& [k, c] : calls_) respond_result(c->rpc_id, tool_error("stockade serve ended unexpectedly"));
                calls_.clear();
                throw Error("mcp: the jail server ended unexpectedly");
            }
        }
        return 0;
    }

private:
    void write_out(const json& msg) {
        std::string line = msg.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
        size_t off = 0;
        while (off < line.size()) {
            ssize_t n = ::write(1, line.data() + off, line.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                eof_ = true;  // the client is gone
                return;
            }
            off += static_cast<size_t>(n);
        }
    }
    void respond_result(const json& id, const json& result) { write_out({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}); }
    void respond_error(const json& id, int code, const std::string& message) {
        write_out({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
    }

    void read_stdin() {
        char buf[65536];
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        if (n <= 0) {
            eof_ = true;
            return;
        }
        in_.append(buf, static_cast<size_t>(n));
        size_t start = 0;
        for (size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string line = in_.substr(start, nl - start);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) on_line(line);
        }
        in_.erase(0, start);
        if (in_.size() > kMaxLine) {
            respond_error(nullptr, -32700, "message longer than 64 MiB");
            in_.clear();
        }
    }

    void on_line(const std::string& line) {
        json msg = json::parse(line, nullptr, false);
        if (msg.is_discarded()) return respond_error(nullptr, -32700, "parse error: not JSON");
        if (msg.is_array()) {  // a 2025-03-26 batch
            for (const auto& m : msg) on_message(m);
            return;
        }
        on_message(msg);
    }

    void on_message(const json& msg) {
        if (!msg.is_object() || msg.value("jsonrpc", "") != "2.0")
            return respond_error(msg.is_object() && msg.contains("id") ? msg["id"] : json(nullptr), -32600,
                                 "invalid request: expected a JSON-RPC 2.0 object");
        const bool is_request = msg.contains("id") && !msg["id"].is_null();
        if (!msg.contains("method")) return;  // a response to us: we send no requests
        if (!msg["method"].is_string()) {
            if (is_request) respond_error(msg["id"], -32600, "invalid request: method must be a string");
            return;
        }
        const std::string method = msg["method"];
        const json params = msg.contains("params") && msg["params"].is_object() ? msg["params"] : json::object();
        if (!is_request) {
            if (method == "notifications/cancelled") cancel(params);
            return;  // notifications/initialized and any other: nothing to answer
        }
        const json& id = msg["id"];
        if (method == "initialize") return initialize(id, params);
        if (method == "ping") return respond_result(id, json::object());
        if (method == "tools/list") return respond_result(id, tool_list(opt_.network_modes));
        if (method == "tools/call") return call_tool(id, params);
        respond_error(id, -32601, "method not found: " + method);
    }

    void initialize(const json& id, const json& params) {
        std::string asked = params.value("protocolVersion", "");
        std::string version = kVersions[0];
        for (const char* v : kVersions)
            if (asked == v) version = v;
        respond_result(id, {{"protocolVersion", version},
                            {"capabilities", {{"tools", {{"listChanged", false}}}}},
                            {"serverInfo", {{"name", "stockade"}, {"title", "stockade: Python in a jail"}, {"version", STOCKADE_VERSION}}},
                            {"instructions",
                             "Run Python with run_python (a fresh jail per call) or keep state across calls with "
                             "python_session_open/run/close. Save images under /work/out to see them."}});
    }

    void call_tool(const json& id, const json& params) {
        if (!params.contains("name") || !params["name"].is_string())
            return respond_error(id, -32602, "invalid params: name (the tool) is required");
        const std::string tool = params["name"];
        ServeCall sc;
        try {
            sc = to_serve(tool, params.value("arguments", json::object()), opt_.network_modes);
        } catch (const UnknownTool& e) {
            return respond_error(id, -32602, e.what());
        } catch (const ToolError& e) {
            return respond_result(id, tool_error(e.what()));
        }
        auto c = std::make_unique<Call>();
        c->rpc_id = id;
        c->tool = tool;
        try {
            c->fd = backend_.connect(sc.mode);
        } catch (const Error& e) {
            return respond_result(id, tool_error(e.what()));
        }
        sc.request["id"] = 1;
        c->out = sc.request.dump() + "\n";
        if (params.contains("_meta") && params["_meta"].is_object() && params["_meta"].contains("progressToken")) {
            c->progress_token = params["_meta"]["progressToken"];
            c->next_progress_ns = monotonic_ns();
        }
        flush(*c);
        calls_[id.dump()] = std::move(c);
    }

    void flush(Call& c) {
        while (!c.out.empty()) {
            ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            c.out.erase(0, static_cast<size_t>(n));
        }
    }

    // True when the call is over (answered).
    bool read_call(Call& c) {
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return false;
            if (n <= 0) {
                respond_result(c.rpc_id, tool_error("the jail server closed the connection"));
                return true;
            }
            c.in.append(buf, static_cast<size_t>(n));
            size_t nl = c.in.find('\n');
            if (nl == std::string::npos) continue;
            json ans = json::parse(c.in.substr(0, nl), nullptr, false);
            if (!ans.is_object()) respond_result(c.rpc_id, tool_error("the jail server sent an unreadable answer"));
            else respond_result(c.rpc_id, to_result(c.tool, ans));
            return true;
        }
    }

    void cancel(const json& params) {
        if (!params.contains("requestId")) return;
        // Closing its connection makes serve kill the run; no answer is sent.
        calls_.erase(params["requestId"].dump());
    }

    void progress() {
        const uint64_t now = monotonic_ns();
        for (auto& [k, c] : calls_) {
            if (c->progress_token.is_null() || now < c->next_progress_ns) continue;
            write_out({{"jsonrpc", "2.0"},
                       {"method", "notifications/progress"},
                       {"params", {{"progressToken", c->progress_token}, {"progress", c->progress}, {"message", "running"}}}});
            ++c->progress;
            c->next_progress_ns = now + 1000000000ull;
        }
    }

    McpOptions opt_;
    Backend backend_;
    std::map<std::string, std::unique_ptr<Call>> calls_;
    std::string in_;
    bool eof_ = false;
};

}  // namespace

int run(const McpOptions& opt) {
    ::signal(SIGPIPE, SIG_IGN);
    Server s(opt);
    return s.run();
}

}  // namespace stockade::mcp
