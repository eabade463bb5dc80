#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "mcp/backend.hpp"
#include "mcp/mcp.hpp"
#include "mcp/outputs.hpp"
#include "mcp/tools.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/event_loop.hpp"
#include "util/json_in.hpp"
#include "util/json_out.hpp"
#include "util/line_buffer.hpp"
#include "util/log.hpp"

#ifndef STOCKADE_VERSION
#define STOCKADE_VERSION "0.0.0"
#endif

namespace stockade::mcp {
namespace {

using nlohmann::json;

// Newest first: a client asking for one of these gets it; any other gets the newest.
const char* const kVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
// A message from the client; serve takes at most 8 MiB of it anyway.
constexpr size_t kMaxMessage = 16u << 20;
constexpr JsonBounds kMessageBounds{32, 200000};
// serve's answer: the whole output (up to the profile's cap, escaped) is
// read here once, then cut for the client and kept in Outputs.
constexpr size_t kMaxAnswer = 1024u << 20;
constexpr JsonBounds kAnswerBounds{16, 100000};

// One tools/call in flight: its own connection to serve, so a cancel (or
// our exit) closes it and serve stops the run (a session's cell is
// interrupted, the session kept).
struct Call {
    std::string rpc_id;  // the request's id, as its JSON text
    std::string tool;
    ServeCall sc;
    uint64_t started_ns = 0;
    UniqueFd fd;
    IoWatch watch;
    std::string out;
    LineBuffer in{kMaxAnswer};
    json progress_token;
    uint64_t next_progress_ns = 0;
    int progress = 0;
};

class Server {
public:
    explicit Server(const McpOptions& opt)
        : opt_(opt),
          cfg_{opt.network_modes, opt.wall_ms},
          backend_(opt.serve_args, opt.network_modes),
          outputs_(backend_.dir()) {}

    int run() {
        sigset_t set;
        ::sigemptyset(&set);
        for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&set, sig);
        ::sigprocmask(SIG_BLOCK, &set, nullptr);
        signals_ = UniqueFd(check(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
        backend_.wait_ready(60000);
        log::info("mcp", "ready (network " + opt_.network_modes.front() + ")");
        IoWatch on_signal(loop_, signals_.get(), POLLIN, [this](short) {
            struct signalfd_siginfo si;
            while (::read(signals_.get(), &si, sizeof si) == sizeof si) stop_ = true;
        });
        stdin_w_ = IoWatch(loop_, 0, POLLIN, [this](short revents) {
            if (revents & (POLLIN | POLLHUP | POLLERR)) read_stdin();
        });
        progress_t_ = Timer(loop_, [] {});  // progress() runs after every round
        // At the end of input, the calls in flight still finish and are answered.
        while (!stop_ && (!eof_ || !calls_.empty())) {
            loop_.run_once();
            if (eof_) stdin_w_.reset();
            if (client_gone_) calls_.clear();
            if (backend_.ended() >= 0) {
                for (auto& [k, c] : calls_) respond_result(c->rpc_id, tool_error("stockade serve ended unexpectedly"));
                calls_.clear();
                throw Error("mcp: the jail server ended unexpectedly");
            }
            progress();
        }
        if (stop_) log::info("mcp", "stopped by a signal; the jails go with the private server");
        return 0;
    }

private:
    void write_out(const std::string& line) {
        size_t off = 0;
        while (off < line.size()) {
            ssize_t w = ::write(1, line.data() + off, line.size() - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                // The client is gone: nobody reads the answers, the runs go
                // with us (after this round: a call may be answering now).
                eof_ = true;
                client_gone_ = true;
                return;
            }
            off += static_cast<size_t>(w);
        }
    }
    // id is the request's own JSON text, echoed token for token.
    void respond(const std::string& id, const char* key, const json& body) {
        write_out("{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"" + key + "\":" + dump_json(body) + "}\n");
    }
    void respond_result(const std::string& id, const json& result) { respond(id, "result", result); }
    void respond_error(const std::string& id, int code, const std::string& message) {
        respond(id, "error", {{"code", code}, {"message", message}});
    }
    void notify(const std::string& method, const json& params) {
        write_out(json{{"jsonrpc", "2.0"}, {"method", method}, {"params", params}}.dump(
                      -1, ' ', false, json::error_handler_t::replace) +
                  "\n");
    }

    void read_stdin() {
        char buf[65536];
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        if (n <= 0) {
            eof_ = true;
            return;
        }
        const char* p = buf;
        size_t len = static_cast<size_t>(n);
        if (skipping_) {
            // The rest of a line that was too long: dropped up to its end.
            const char* nl = static_cast<const char*>(std::memchr(p, '\n', len));
            if (!nl) return;
            skipping_ = false;
            len -= static_cast<size_t>(nl + 1 - p);
            p = nl + 1;
        }
        in_.append(p, len);
        in_.lines([&](std::string_view line) {
            on_line(line);
            return !stop_;
        });
        if (in_.over()) {
            respond_error("null", -32600, "message longer than 16 MiB: dropped");
            in_.clear();
            skipping_ = true;
        }
    }

    void on_line(std::string_view line) {
        JsonIn in = parse_json(line, kMessageBounds);
        if (!in.ok()) return respond_error("null", -32700, "parse error: " + in.error);
        if (in.value.is_array()) {  // a 2025-03-26 batch
            if (in.value.empty()) return respond_error("null", -32600, "invalid request: an empty batch");
            long i = 0;
            for (const auto& m : in.value) on_message(in, m, i++);
            return;
        }
        on_message(in, in.value, -1);
    }

    void on_message(const JsonIn& in, const json& msg, long index) {
        if (!msg.is_object() || msg.value("jsonrpc", "") != "2.0") {
            std::string id = "null";
            if (msg.is_object() && msg.contains("id") && !msg["id"].is_structured()) id = id_text(in, msg["id"], index);
            return respond_error(id, -32600, "invalid request: expected a JSON-RPC 2.0 object");
        }
        const bool is_request = msg.contains("id") && !msg["id"].is_null();
        if (is_request && msg["id"].is_structured())
            return respond_error("null", -32600, "invalid request: id must be a string or a number");
        if (!msg.contains("method")) return;  // a response to us: we send no requests
        const std::string id = is_request ? id_text(in, msg["id"], index) : "null";
        if (!msg["method"].is_string()) {
            if (is_request) respond_error(id, -32600, "invalid request: method must be a string");
            return;
        }
        const std::string method = msg["method"];
        const json params = msg.contains("params") && msg["params"].is_object() ? msg["params"] : json::object();
        if (!is_request) {
            if (method == "notifications/cancelled") cancel(params);
            return;  // notifications/initialized and any other: nothing to answer
        }
        if (method == "initialize") return initialize(id, params);
        if (method == "ping") return respond_result(id, json::object());
        if (method == "tools/list") return respond_result(id, tool_list(cfg_));
        if (method == "tools/call") return call_tool(id, params);
        if (method == "resources/list") return list_resources(id);
        if (method == "resources/templates/list") return respond_result(id, {{"resourceTemplates", json::array()}});
        if (method == "resources/read") return read_resource(id, params);
        respond_error(id, -32601, "method not found: " + method.substr(0, 128));
    }

    void initialize(const std::string& id, const json& params) {
        std::string asked = params.value("protocolVersion", "");
        std::string version = kVersions[0];
        for (const char* v : kVersions)
            if (asked == v) version = v;
        respond_result(
            id, {{"protocolVersion", version},
                 {"capabilities", {{"tools", {{"listChanged", false}}}, {"resources", json::object()}}},
                 {"serverInfo",
                  {{"name", "stockade"}, {"title", "stockade: Python in a jail"}, {"version", STOCKADE_VERSION}}},
                 {"instructions",
                  "Run Python with run_python (a fresh jail per call) or keep state across calls with "
                  "python_session_open/run/close. Images (PNG, JPEG, GIF, WebP) saved under /work/out come "
                  "back as images, from runs and from session cells. Output too long for one message is "
                  "cut to its head and tail; the whole is readable with resources/read."}});
    }

    void list_resources(const std::string& id) {
        json list = json::array();
        for (const auto& [uri, bytes] : outputs_.list()) {
            if (list.size() >= 1000) break;
            list.push_back({{"uri", uri}, {"name", uri.substr(18)}, {"mimeType", "text/plain"}, {"size", bytes}});
        }
        respond_result(id, {{"resources", list}});
    }

    void read_resource(const std::string& id, const json& params) {
        auto u = params.find("uri");
        if (u == params.end() || !u->is_string()) return respond_error(id, -32602, "invalid params: uri is required");
        auto data = outputs_.read(u->get<std::string>());
        if (!data) return respond_error(id, -32002, "resource not found: " + u->get<std::string>().substr(0, 256));
        respond_result(id, {{"contents", json::array({{{"uri", *u}, {"mimeType", "text/plain"}, {"text", *data}}})}});
    }

    void call_tool(const std::string& id, const json& params) {
        if (!params.contains("name") || !params["name"].is_string())
            return respond_error(id, -32602, "invalid params: name (the tool) is required");
        if (calls_.count(id)) return respond_error(id, -32600, "invalid request: a call with this id is in flight");
        const std::string tool = params["name"];
        auto c = std::make_unique<Call>();
        try {
            c->sc = to_serve(tool, params.value("arguments", json::object()), cfg_);
        } catch (const UnknownTool& e) {
            return respond_error(id, -32602, e.what());
        } catch (const ToolError& e) {
            return respond_result(id, tool_error(e.what()));
        }
        c->rpc_id = id;
        c->tool = tool;
        c->started_ns = monotonic_ns();
        try {
            c->fd = backend_.connect(c->sc.mode);
        } catch (const Error& e) {
            return respond_result(id, tool_error(e.what()));
        }
        json req = c->sc.request;
        req["id"] = 1;
        c->out = dump_json(req) + "\n";
        if (params.contains("_meta") && params["_meta"].is_object() && params["_meta"].contains("progressToken")) {
            c->progress_token = params["_meta"]["progressToken"];
            c->next_progress_ns = monotonic_ns();
        }
        c->watch = IoWatch(loop_, c->fd.get(), POLLIN, [this, id](short revents) { on_call(id, revents); });
        flush(*c);
        calls_[id] = std::move(c);
    }

    void on_call(const std::string& id, short revents) {
        auto it = calls_.find(id);
        if (it == calls_.end()) return;
        if (revents & POLLOUT) flush(*it->second);
        if (revents & (POLLIN | POLLHUP | POLLERR))
            if (read_call(*it->second)) calls_.erase(id);
    }

    void flush(Call& c) {
        while (!c.out.empty()) {
            ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            c.out.erase(0, static_cast<size_t>(n));
        }
        c.watch.set_events(static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)));
    }

    // True when the call is over (answered).
    bool read_call(Call& c) {
        char buf[65536];
        for (int round = 0; round < 64; ++round) {
            ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return false;
            if (n <= 0) {
                respond_result(c.rpc_id, tool_error("the jail server closed the connection"));
                return true;
            }
            c.in.append(buf, static_cast<size_t>(n));
            bool done = false;
            c.in.lines([&](std::string_view line) {
                JsonIn ans = parse_json(line, kAnswerBounds);
                const long ms = static_cast<long>((monotonic_ns() - c.started_ns) / 1000000);
                if (!ans.ok() || !ans.value.is_object()) {
                    log::error("mcp", "call " + c.rpc_id + " " + c.tool + ": an unreadable answer from serve");
                    respond_result(c.rpc_id, tool_error("the jail server sent an unreadable answer"));
                } else {
                    note_degraded(ans.value);
                    const json& a = ans.value;
                    std::string what = a.contains("error") && a["error"].is_object()
                                           ? a["error"].value("code", std::string("error"))
                                           : a.value("status", std::string(a.contains("session") ? "ok" : "done"));
                    log::info("mcp",
                              "call " + c.rpc_id + " " + c.tool + ": " + what + " in " + std::to_string(ms) + " ms");
                    respond_result(c.rpc_id, to_result(c.tool, a, c.sc, cfg_, outputs_));
                }
                done = true;
                return false;
            });
            if (done) return true;
            if (c.in.over()) {
                respond_result(c.rpc_id, tool_error("the jail server's answer was too large"));
                return true;
            }
        }
        return false;
    }

    // What degraded on this host is the operator's to fix: said once, here.
    void note_degraded(const json& ans) {
        auto d = ans.find("degraded");
        if (d == ans.end() || !d->is_array()) return;
        for (const auto& x : *d) {
            std::string s = x.is_string() ? x.get<std::string>() : x.dump();
            if (degraded_seen_.insert(s).second) log::warning("mcp", "limits degraded on this host: " + s);
        }
    }

    void cancel(const json& params) {
        if (!params.contains("requestId") || params["requestId"].is_structured()) return;
        // Closing its connection makes serve stop the run (or interrupt the
        // session's cell); no answer is sent.
        if (calls_.erase(params["requestId"].dump()))
            log::info("mcp", "call " + params["requestId"].dump() + " cancelled");
    }

    // A progress note a second for each call that asked for them; the timer
    // wakes the loop for the next one.
    void progress() {
        const uint64_t now = monotonic_ns();
        uint64_t next = 0;
        for (auto& [k, c] : calls_) {
            if (c->progress_token.is_null()) continue;
            if (now >= c->next_progress_ns) {
                notify("notifications/progress",
                       {{"progressToken", c->progress_token}, {"progress", c->progress}, {"message", "running"}});
                ++c->progress;
                c->next_progress_ns = now + 1000000000ull;
            }
            if (!next || c->next_progress_ns < next) next = c->next_progress_ns;
        }
        if (next)
            progress_t_.arm_at_ns(next);
        else
            progress_t_.disarm();
    }

    McpOptions opt_;
    ToolConfig cfg_;
    Backend backend_;
    Outputs outputs_;  // files in backend_'s directory: declared after it, so gone before it
    EventLoop loop_;
    UniqueFd signals_;
    IoWatch stdin_w_;
    Timer progress_t_;
    std::map<std::string, std::unique_ptr<Call>> calls_;
    std::set<std::string> degraded_seen_;
    LineBuffer in_{kMaxMessage};
    bool eof_ = false, stop_ = false, skipping_ = false, client_gone_ = false;
};

}  // namespace

int run(const McpOptions& opt) {
    ::signal(SIGPIPE, SIG_IGN);
    Server s(opt);
    return s.run();
}

}  // namespace stockade::mcp
