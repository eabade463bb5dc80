#include "serve/server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "jail_abi.hpp"
#include "plan/fingerprint.hpp"
#include "plan/host.hpp"
#include "plan/plan.hpp"
#include "report/result.hpp"
#include "serve/client.hpp"
#include "serve/listener.hpp"
#include "serve/pool.hpp"
#include "serve/reaper.hpp"
#include "supervise/memory.hpp"
#include "serve/request.hpp"
#include "serve/runner.hpp"
#include "serve/warm_jail.hpp"
#include "supervise/proxy.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/event_loop.hpp"
#include "util/fd.hpp"
#include "util/json_in.hpp"
#include "util/log.hpp"

namespace stockade::serve {
namespace {

using nlohmann::json;

// What one request may be: a few levels deep (files -> path -> {"b64"}),
// one value per file, argument or limit, within kMaxRequest bytes.
constexpr JsonBounds kRequestBounds{8, 4 * kMaxReturnFiles + 1024};
// Requests waiting for a jail, as parsed tasks: per client and in all.
constexpr size_t kMaxQueuedPerClient = 64;
constexpr size_t kMaxQueuedBytesPerClient = 32u << 20;
constexpr size_t kMaxQueuedBytes = 256u << 20;
// A client whose unread answers pass this has its requests left unread
// until it catches up: its own socket buffer then pushes back on it.
constexpr size_t kPauseUnread = 16u << 20;
constexpr size_t kMaxIdLength = 256;

json error_body(const std::string& code, const std::string& message) {
    return {{"error", {{"code", code}, {"message", message}}}};
}

std::string random_id() {
    std::random_device rd;
    char buf[33];
    for (int i = 0; i < 4; ++i) std::snprintf(buf + 8 * i, 9, "%08x", rd());
    return buf;
}

std::string real(const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

bool under(const std::string& path, const std::string& dir) {
    if (dir == "/") return true;
    return path == dir ||
           (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// The fds this process may hold decide how many clients and proxy
// connections it takes: raised to the hard limit at start, then shared out
// with room kept for the jails (each holds about a dozen: pidfd, pipes,
// relays, control socket, notifier, cgroup).
struct FdBudget {
    size_t limit = 1024, clients = 64, proxy = 128;
};

FdBudget size_fd_budget(size_t max_jails) {
    struct rlimit rl;
    FdBudget b;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1u << 20 : rl.rlim_max;
        want = std::min<rlim_t>(want, 1u << 16);
        if (rl.rlim_cur < want) {
            rl.rlim_cur = want;
            if (::setrlimit(RLIMIT_NOFILE, &rl) < 0) ::getrlimit(RLIMIT_NOFILE, &rl);
        }
        b.limit = rl.rlim_cur == RLIM_INFINITY ? (1u << 16) : static_cast<size_t>(rl.rlim_cur);
    }
    const size_t reserved = 64 + 16 * max_jails;
    const size_t spare = b.limit > reserved ? b.limit - reserved : 16;
    b.clients = std::clamp<size_t>(spare / 4, 4, 1024);
    b.proxy = std::max<size_t>(4, (spare - std::min(spare, b.clients)) / 2);
    return b;
}

// A run request in flight, from its client's point of view.
struct Job {
    uint64_t client = 0;
    uid_t uid = 0;
    std::string id;  // the request's id, as JSON text
    Task task;
    std::shared_ptr<const JailSpec> spec;
    std::unique_ptr<WarmJail> jail;
    bool warm = false, dispatched = false;
    json reply;  // the runner's "done", cleaned, when it came
};

struct Session {
    std::string id;
    uid_t owner = 0;
    std::shared_ptr<const JailSpec> spec;
    std::unique_ptr<WarmJail> jail;
    bool opened = false;  // ready, and its opener answered
    bool warm = false;    // its jail came from the session pool
    uint64_t open_client = 0;
    std::string open_id;
    bool busy = false;         // a cell is running
    uint64_t cell_client = 0;  // 0: its client went away (cancelled): the answer goes nowhere
    std::string cell_id;
    uint64_t cell_timeout_ms = 0;
    bool interrupted = false, killed = false, timed_out = false;
    uint64_t last_used_ns = 0, idle_ms = 0;
    uint64_t cells = 0;
};

struct Queued {
    uint64_t client;
    std::string id;
    Task task;
    std::shared_ptr<const JailSpec> spec;
    size_t bytes;
};

class Server {
public:
    Server(const profile::CommandLine& cl, const ServeOptions& opt, char** envp) : cl_(cl), opt_(opt), envp_(envp) {}

    int run();

private:
    std::shared_ptr<const JailSpec> make_spec(const std::vector<std::string>& extra_sets, bool session);
    void on_line(Client& c, std::string_view line);
    void on_request(Client& c, json& req, const std::string& id);
    void op_run(Client& c, json& req, const std::string& id);
    void start_job(std::unique_ptr<Job> job);
    void op_session_open(Client& c, const json& req, const std::string& id);
    void op_session_run(Client& c, json& req, const std::string& id);
    void op_session_close(Client& c, const json& req, const std::string& id);
    void op_session_list(Client& c, const std::string& id);
    void op_stats(Client& c, const json& req, const std::string& id);
    const json& memory();
    void accept_clients();
    void log_refusal(const std::string& why);
    void tick();
    void tick_jobs();
    bool restart_failed_fork(std::unique_ptr<WarmJail>& jail, const std::shared_ptr<const JailSpec>& spec, Pool& from);
    void tick_sessions();
    void tick_queue();
    void finish_job(Job& job);
    void interrupt_cell(Session& s, bool timeout);
    void on_cell_deadline(const std::string& sid);
    void on_cell_grace_over(const std::string& sid);
    void drop_client(uint64_t id);
    void begin_drain();
    void probe();
    Client* client(uint64_t id);
    void reply(uint64_t client, const std::string& id, const json& body);
    size_t live_jails() const;
    size_t room() const { return opt_.max_jails > live_jails() ? opt_.max_jails - live_jails() : 0; }
    // Fair shares: with k uids connected, each may hold max/k of the jails
    // or sessions while others want them.
    size_t active_uids() const;
    size_t jails_of(uid_t uid) const;
    size_t sessions_of(uid_t uid) const;
    bool make_room();
    // Every jail the server is done with: killed now, reaped (and its cgroup
    // removed) by reaper_ once its init is gone, never waited for here.
    void retire(std::unique_ptr<WarmJail> j);

    profile::CommandLine cl_;
    ServeOptions opt_;
    char** envp_;
    EventLoop loop_;
    std::unique_ptr<Listener> listener_;
    UniqueFd signals_;
    std::shared_ptr<const JailSpec> base_, session_spec_;
    std::unique_ptr<Pool> pool_;
    // With preloads, one session jail kept warm too, so opening a session
    // costs no import (a cold one with numpy takes a few hundred ms).
    std::unique_ptr<Pool> session_pool_;
    std::map<uint64_t, std::unique_ptr<Client>> clients_;
    std::vector<std::unique_ptr<Job>> jobs_;
    Reaper reaper_{loop_};
    std::map<std::string, Session> sessions_;
    std::map<uid_t, std::deque<Queued>> queue_;
    std::map<uint64_t, std::pair<size_t, size_t>> queued_by_client_;  // count, bytes
    size_t queued_bytes_ = 0;
    uid_t rr_uid_ = 0;
    FdBudget fds_;
    uint64_t next_client_ = 1;
    bool draining_ = false;
    // The listening socket and the signals on the loop; a wake-up for the
    // nearest idle session's end or pool retry.
    IoWatch listen_w_, signals_w_;
    Timer wake_;
    uint64_t served_ = 0, cold_ = 0, warm_served_ = 0, task_failures_ = 0, refused_ = 0;
    uint64_t last_refusal_log_ns_ = 0, refusals_unlogged_ = 0;
    // The memory figures, read at most once a second however often asked.
    json memory_;
    uint64_t memory_at_ns_ = 0;
};

std::shared_ptr<const JailSpec> Server::make_spec(const std::vector<std::string>& extra_sets, bool session) {
    profile::CommandLine cl = cl_;
    cl.sets.insert(cl.sets.end(), extra_sets.begin(), extra_sets.end());
    auto spec = std::make_shared<JailSpec>();
    spec->policy = profile::load(cl);
    spec->session = session;
    spec->preload = opt_.preload;
    plan::Invocation inv;
    inv.mode = plan::Invocation::Mode::Code;
    inv.code = runner_source();
    // Run as a directory, so python finds the build's bytecode of it in __pycache__.
    inv.code_run = "/.stockade-runner";
    inv.code_file = inv.code_run + "/__main__.py";
    if (!runner_bytecode().empty())
        inv.code_extras = {
            {inv.code_run + "/__pycache__/__main__." + runner_cache_tag() + ".pyc", std::string(runner_bytecode())}};
    inv.writable_work = true;
    inv.args = {std::to_string(jail::kControlFd), session ? "session" : "task", opt_.preload};
    plan::HostFacts host = plan::gather_host_facts(envp_);
    host.stdio_ttys = 0;  // the server's terminal, if any, is nobody's in a jail
    spec->plan = plan::make(spec->policy, inv, host);
    plan::check_sources(spec->plan);
    spec->plan_hash = plan::fingerprint(spec->plan);
    // The pools' specs (no per-task limits) fork their jails from a template,
    // where the filter is on: it is what keeps a forked task from making
    // namespaces of its own (jail/sysctls.hpp).
    if (opt_.templates && extra_sets.empty() && spec->plan.seccomp.enabled) {
        auto templ = std::make_shared<JailSpec>(*spec);
        inv.template_program = true;
        inv.args[1] = std::string("template:") + inv.args[1];
        // What its code on huge pages may take (runner.py, _huge_budget).
        inv.args.push_back(std::to_string(spec->policy.limits.memory));
        inv.code_extras.emplace_back(inv.code_run + "/forkd.so", std::string(forkd_library()));
        templ->plan = plan::make(spec->policy, inv, host);
        // Its CPU is every fork's: no budget of its own to run out of (each
        // task has its own).
        templ->plan.limits.cpu_ms = 0;
        templ->plan_hash = plan::fingerprint(templ->plan);
        spec->templ = std::move(templ);
    }
    // A task that could reach the socket would be a client of the server's
    // uid: every other tenant's sessions, the pool, the drain.
    if (listener_ && !listener_->dir().empty()) {
        const std::string dir = real(listener_->dir());
        for (const auto& m : spec->plan.mounts)
            if ((m.kind == plan::MountOp::Kind::Bind || m.kind == plan::MountOp::Kind::Device) &&
                under(dir, real(m.src)))
                throw Error(m.origin + ": " + m.src + " contains the server's socket directory " + dir +
                            "; a task could reach the server through it (bind a narrower directory, or put the socket "
                            "elsewhere with --socket)");
    }
    return spec;
}

size_t Server::live_jails() const {
    size_t n = (pool_ ? pool_->live() : 0) + (session_pool_ ? session_pool_->live() : 0) + reaper_.size();
    for (const auto& j : jobs_)
        if (j->jail) ++n;
    for (const auto& [id, s] : sessions_)
        if (s.jail) ++n;
    return n;
}

size_t Server::active_uids() const {
    std::set<uid_t> u;
    for (const auto& [id, c] : clients_) u.insert(c->uid());
    return std::max<size_t>(1, u.size());
}

size_t Server::jails_of(uid_t uid) const {
    size_t n = 0;
    for (const auto& j : jobs_) n += j->uid == uid && j->jail;
    for (const auto& [id, s] : sessions_) n += s.owner == uid && s.jail;
    return n;
}

size_t Server::sessions_of(uid_t uid) const {
    size_t n = 0;
    for (const auto& [id, s] : sessions_) n += s.owner == uid;
    return n;
}

void Server::retire(std::unique_ptr<WarmJail> j) {
    if (!j) return;
    j->kill();
    reaper_.bury(std::move(j));
}

// A waiting pool jail gives way to work that needs a jail of its own.
bool Server::make_room() {
    // A killed jail still ending frees its place in a moment: that is
    // waited for, here only (at the limit), before a pool jail gives way.
    while (room() == 0 && reaper_.reap_one()) {}
    if (room() > 0) return true;
    return (pool_->drop_one() || session_pool_->drop_one()) && room() > 0;
}

Client* Server::client(uint64_t id) {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second.get();
}

void Server::reply(uint64_t id, const std::string& rid, const json& body) {
    if (Client* c = client(id)) c->send(rid, body);
}

void Server::on_line(Client& c, std::string_view line) {
    JsonIn in = parse_json(line, kRequestBounds);
    if (!in.ok() || !in.value.is_object()) {
        c.send("null", error_body("bad_request", in.ok() ? "expected one JSON object per line"
                                                         : "expected one JSON object per line: " + in.error));
        return;
    }
    json& req = in.value;
    auto idv = req.find("id");
    if (idv == req.end()) {
        c.send("null",
               error_body("bad_request", "id: required (a string, number, boolean or null, echoed in the answer)"));
        return;
    }
    if (idv->is_structured() || (idv->is_string() && idv->get_ref<const std::string&>().size() > kMaxIdLength)) {
        c.send("null", error_body("bad_request", "id: expected a string (at most 256 bytes), number, boolean or null"));
        return;
    }
    const std::string id = id_text(in, *idv);
    try {
        if (draining_) throw RequestError("shutting_down", "the server is shutting down");
        on_request(c, req, id);
    } catch (const RequestError& e) {
        if (e.code != "bad_request")
            log::info("serve", "client " + std::to_string(c.id()) + " request " + id + ": " + e.code + ": " + e.what());
        c.send(id, error_body(e.code, e.what()));
    } catch (const profile::ProfileError& e) {
        c.send(id, error_body("bad_request", e.diagnostics.front().str()));
    } catch (const std::exception& e) {
        log::error("serve", "client " + std::to_string(c.id()) + " request " + id + ": " + e.what());
        c.send(id, error_body("internal", e.what()));
    }
}

void Server::on_request(Client& c, json& req, const std::string& id) {
    const std::string op = string_field(req, "op", true);
    if (op == "run") return op_run(c, req, id);
    if (op == "session.open") return op_session_open(c, req, id);
    if (op == "session.run") return op_session_run(c, req, id);
    if (op == "session.close") return op_session_close(c, req, id);
    if (op == "session.list") return op_session_list(c, id);
    if (op == "stats") return op_stats(c, req, id);
    throw RequestError("bad_request",
                       "op: unknown \"" + op.substr(0, 64) +
                           "\" (expected run, session.open, session.run, session.close, session.list, stats)");
}

void Server::op_run(Client& c, json& req, const std::string& id) {
    Task task = parse_task(req, false, base_->policy.limits);
    std::shared_ptr<const JailSpec> spec = base_;
    if (!task.limit_sets.empty()) {
        spec = make_spec(task.limit_sets, false);
        check_lowered(base_->policy.limits, spec->policy.limits);
    }
    // What it will hold while it waits: its files, mostly.
    const size_t bytes = task.to_runner.size();
    auto& [count, held] = queued_by_client_[c.id()];
    if (count >= kMaxQueuedPerClient)
        throw RequestError("busy", "64 requests of this client are already waiting for a jail");
    if (held + bytes > kMaxQueuedBytesPerClient || queued_bytes_ + bytes > kMaxQueuedBytes)
        throw RequestError("busy", "too many bytes of requests are waiting for a jail; try again when answers come");
    ++count;
    held += bytes;
    queued_bytes_ += bytes;
    queue_[c.uid()].push_back({c.id(), id, std::move(task), std::move(spec), bytes});
    tick_queue();
}

void Server::start_job(std::unique_ptr<Job> job) {
    if (job->spec == base_) {
        job->jail = pool_->take(false);
        job->warm = static_cast<bool>(job->jail);
        // One already on its way is sooner than one started now.
        if (!job->jail) job->jail = pool_->take(true);
    }
    if (!job->jail) {
        // Cold: a jail of its own, built now, within --max-jails like every other.
        if (!make_room()) throw Error("no room for a jail (--max-jails)");
        job->jail = std::make_unique<WarmJail>(job->spec, loop_);
        job->jail->start();
        ++cold_;
    }
    jobs_.push_back(std::move(job));
    tick_jobs();
}

void Server::finish_job(Job& job) {
    supervise::Outcome o = job.jail->collect();
    bool truncated = false;
    auto [out, err] = job.jail->supervisor().take_output(&truncated);
    // Nothing of the task runs once it is answered: a program that reported
    // its own end (Supervisor::end_as_reported) may still be exiting, with
    // what it started beside it. The kill is sent now; the jail is reaped
    // and its cgroup removed after the answer.
    job.jail->kill();
    const report::Result result = report::make_result(o, job.spec->plan, job.spec->policy, job.spec->plan_hash);
    json ans = report::to_json(result);
    ans["warm"] = job.warm;
    ans["stdout"] = std::move(out);
    ans["stderr"] = std::move(err);
    ans["files"] = job.reply.is_object() ? std::move(job.reply["files"]) : json::object();
    if (!job.jail->warmup_error().empty())
        ans["error"] = {{"code", "jail_failed"}, {"message", job.jail->warmup_error()}};
    if (log::enabled(log::Level::Info))
        log::info("serve", "task " + job.id + " client " + std::to_string(job.client) + " uid " +
                               std::to_string(job.uid) + ": " + report::to_string(result.status) + " in " +
                               std::to_string(static_cast<long>(result.wall_ms)) + " ms (" +
                               (job.warm ? "warm" : "cold") + " jail, pid " +
                               std::to_string(job.jail->supervisor().pid()) + ")");
    reply(job.client, job.id, ans);
    ++served_;
    if (job.warm) ++warm_served_;
}

void Server::tick_jobs() {
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        Job& job = **it;
        WarmJail& j = *job.jail;
        if (!job.dispatched && j.state() == WarmJail::State::Ready) {
            const profile::Limits& lim = job.spec->policy.limits;
            j.supervisor().begin_task(job.task.timeout_ms ? job.task.timeout_ms : lim.wall_ms);
            j.dispatch(std::move(job.task.to_runner));  // the runner has it: not held twice
            job.dispatched = true;
        }
        json r;
        while (j.pop_reply(r)) job.reply = std::move(r);
        if (!j.ended()) {
            ++it;
            continue;
        }
        if (!job.dispatched && restart_failed_fork(job.jail, job.spec, *pool_)) {
            job.warm = false;
            ++it;
            continue;
        }
        if (!job.dispatched) ++task_failures_;
        finish_job(job);
        retire(std::move(job.jail));
        it = jobs_.erase(it);
    }
}

void Server::op_session_open(Client& c, const json& req, const std::string& id) {
    for (const auto& [k, v] : req.items())
        if (k != "id" && k != "op" && k != "idle_timeout")
            throw RequestError("bad_request", "unknown field \"" + k + "\" (session.open takes idle_timeout)");
    uint64_t idle_ms = opt_.idle_timeout_ms;
    if (auto t = req.find("idle_timeout"); t != req.end() && !t->is_null()) {
        if (!t->is_number() || !(t->get<double>() > 0))
            throw RequestError("bad_request", "idle_timeout: expected seconds above 0");
        idle_ms =
            std::min<uint64_t>(opt_.idle_timeout_ms, static_cast<uint64_t>(std::min(t->get<double>(), 1e9) * 1000));
    }
    if (sessions_.size() >= opt_.max_sessions)
        throw RequestError("busy", std::to_string(opt_.max_sessions) + " sessions are open (--max-sessions)");
    const size_t share = std::max<size_t>(1, opt_.max_sessions / active_uids());
    if (sessions_of(c.uid()) >= share)
        throw RequestError("busy", "uid " + std::to_string(c.uid()) + " holds its share (" + std::to_string(share) +
                                       ") of --max-sessions while other uids are connected");
    if (jails_of(c.uid()) >= std::max<size_t>(1, opt_.max_jails / active_uids()) && active_uids() > 1)
        throw RequestError("busy", "uid " + std::to_string(c.uid()) + " holds its share of --max-jails");
    // A warm session jail when there is one (it is counted already), else a new one.
    std::unique_ptr<WarmJail> warm = session_pool_->take(true);
    if (!warm && !make_room())
        throw RequestError("busy", std::to_string(opt_.max_jails) + " jails are running (--max-jails)");
    Session s;
    s.id = random_id();
    s.owner = c.uid();
    s.spec = session_spec_;
    s.open_client = c.id();
    s.open_id = id;
    s.idle_ms = idle_ms;
    s.warm = static_cast<bool>(warm);
    if (warm) {
        s.jail = std::move(warm);
    } else {
        s.jail = std::make_unique<WarmJail>(s.spec, loop_);
        s.jail->start();
    }
    s.last_used_ns = monotonic_ns();
    log::info("serve", "session " + s.id.substr(0, 8) + " opening for client " + std::to_string(c.id()) + " uid " +
                           std::to_string(c.uid()));
    sessions_.emplace(s.id, std::move(s));
}

void Server::op_session_run(Client& c, json& req, const std::string& id) {
    const std::string sid = string_field(req, "session", true);
    auto it = sessions_.find(sid);
    if (it == sessions_.end() || it->second.owner != c.uid() || !it->second.opened)
        throw RequestError("no_such_session", "session: no open session \"" + sid.substr(0, 64) + "\"");
    Session& s = it->second;
    if (s.busy) throw RequestError("busy", "session: a cell is already running in it");
    Task t = parse_task(req, true, s.spec->policy.limits);
    s.busy = true;
    s.cell_client = c.id();
    s.cell_id = id;
    s.interrupted = s.timed_out = false;
    const uint64_t ms = t.timeout_ms ? t.timeout_ms : s.spec->policy.limits.wall_ms;
    s.cell_timeout_ms = ms;
    // The cell's time limit runs on its jail's own clock, as a task's does;
    // at the end it is interrupted, and the session lives on.
    if (ms) s.jail->supervisor().set_deadline(ms, [this, sid] { on_cell_deadline(sid); });
    s.jail->dispatch(std::move(t.to_runner));
}

void Server::op_session_close(Client& c, const json& req, const std::string& id) {
    const std::string sid = string_field(req, "session", true);
    auto it = sessions_.find(sid);
    if (it == sessions_.end() || it->second.owner != c.uid())
        throw RequestError("no_such_session", "session: no open session \"" + sid.substr(0, 64) + "\"");
    Session& s = it->second;
    if (s.busy)
        reply(s.cell_client, s.cell_id, error_body("session_closed", "the session was closed while this cell ran"));
    if (!s.opened)
        reply(s.open_client, s.open_id, error_body("session_ended", "the session was closed before it was ready"));
    log::info("serve", "session " + sid.substr(0, 8) + " closed by client " + std::to_string(c.id()));
    retire(std::move(s.jail));
    sessions_.erase(it);
    c.send(id, {{"closed", sid}});
}

void Server::op_session_list(Client& c, const std::string& id) {
    json list = json::array();
    const uint64_t now = monotonic_ns();
    for (const auto& [sid, s] : sessions_)
        if (s.owner == c.uid() && s.opened)
            list.push_back({{"session", sid},
                            {"busy", s.busy},
                            {"cells", s.cells},
                            {"idle_s", static_cast<double>(now - s.last_used_ns) / 1e9}});
    c.send(id, {{"sessions", list}});
}

void Server::op_stats(Client& c, const json& req, const std::string& id) {
    size_t busy = 0;
    for (const auto& j : jobs_)
        if (j->jail) ++busy;
    size_t queued = 0;
    for (const auto& [uid, q] : queue_) queued += q.size();
    json body = {{"pool", pool_->target()},
                 {"warm", pool_->ready()},
                 {"warming", pool_->size() - pool_->ready()},
                 {"session_warm", session_pool_->ready()},
                 {"busy", busy},
                 {"queued", queued},
                 {"queued_bytes", queued_bytes_},
                 {"sessions", sessions_.size()},
                 {"max_sessions", opt_.max_sessions},
                 {"jails", live_jails()},
                 {"max_jails", opt_.max_jails},
                 {"clients", clients_.size()},
                 {"max_clients", fds_.clients},
                 {"proxy_connections", supervise::Proxy::process_connections()},
                 {"max_proxy_connections", fds_.proxy},
                 {"fd_limit", fds_.limit},
                 {"refused_peers", refused_},
                 {"refills", pool_->refills()},
                 {"template_forks", pool_->forks() + session_pool_->forks()},
                 {"template_failures", pool_->template_failures() + session_pool_->template_failures()},
                 {"template_error", pool_->template_error()},
                 {"failures", pool_->failures() + task_failures_},
                 {"last_failure", pool_->last_error()},
                 {"served", served_},
                 {"served_warm", warm_served_},
                 {"cold_starts", cold_},
                 {"preload", opt_.preload},
                 {"profile", base_->policy.name},
                 {"pid", ::getpid()}};
    // Walking every jail's processes costs milliseconds: asked for, not given by default.
    if (auto m = req.find("memory"); m != req.end() && m->is_boolean() && m->get<bool>()) body["memory"] = memory();
    c.send(id, body);
}

// PSS in bytes (supervise/memory.hpp): of each ready warm jail (its init, the
// runner and what it imported), of each jail running a task or holding a
// session, and of the server itself. A jail that ended meanwhile is left out.
// The walk gets 50 ms of the loop, at most once a second: past that the
// figures are marked partial rather than the loop kept waiting.
const json& Server::memory() {
    const uint64_t now = monotonic_ns();
    if (memory_at_ns_ && now - memory_at_ns_ < 1000000000ull) return memory_;
    const uint64_t deadline = now + 50000000ull;
    bool partial = false;
    auto of = [&](const std::vector<pid_t>& pids) {
        json out = json::array();
        for (pid_t p : pids)
            if (auto t = supervise::tree_pss_bytes(p, deadline)) {
                partial |= !t->complete;
                if (t->complete) out.push_back(t->bytes);
            }
        return out;
    };
    std::vector<pid_t> busy, sessions;
    for (const auto& j : jobs_)
        if (j->jail) busy.push_back(j->jail->pid());
    for (const auto& [sid, s] : sessions_)
        if (s.jail) sessions.push_back(s.jail->pid());
    json templates = json::array();
    for (pid_t t : {pool_->template_pid(), session_pool_->template_pid()})
        if (t > 0)
            if (auto b = supervise::template_pss_bytes(t)) templates.push_back(*b);
    memory_ = {{"server_pss_bytes", supervise::process_pss_bytes(::getpid()).value_or(0)},
               {"warm_pss_bytes", of(pool_->ready_pids())},
               {"template_pss_bytes", templates},
               {"session_warm_pss_bytes", of(session_pool_->ready_pids())},
               {"busy_pss_bytes", of(busy)},
               {"session_pss_bytes", of(sessions)}};
    memory_["partial"] = partial;
    memory_at_ns_ = now;
    return memory_;
}

void Server::interrupt_cell(Session& s, bool timeout) {
    if (s.interrupted) return;
    s.interrupted = true;
    s.timed_out = timeout;
    s.jail->supervisor().signal(SIGINT);
    // A cell that will not stop is killed after the grace, and its session with it.
    s.jail->supervisor().set_deadline(std::max<uint64_t>(100, s.spec->policy.limits.grace_ms),
                                      [this, sid = s.id] { on_cell_grace_over(sid); });
}

void Server::on_cell_deadline(const std::string& sid) {
    auto it = sessions_.find(sid);
    if (it != sessions_.end() && it->second.busy && !it->second.interrupted) interrupt_cell(it->second, true);
}

void Server::on_cell_grace_over(const std::string& sid) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end() || !it->second.busy || it->second.killed) return;
    it->second.killed = true;
    it->second.jail->kill();
}

// A fork that ended before its task or session reached it (its template
// died or hung): nothing of the caller's ran, so it gets a jail started now
// in its place, once (that one is not a fork). False: no jail could start,
// and the fork's failure is the answer.
bool Server::restart_failed_fork(std::unique_ptr<WarmJail>& jail, const std::shared_ptr<const JailSpec>& spec,
                                 Pool& from) {
    if (!jail->forked()) return false;
    std::unique_ptr<WarmJail> fresh;
    try {
        if (!make_room()) return false;
        fresh = std::make_unique<WarmJail>(spec, loop_);
        fresh->start();
    } catch (const std::exception& e) {
        log::error("serve", std::string("a jail in place of a failed fork: ") + e.what());
        return false;
    }
    from.ended_unready(*jail);
    log::info("serve", "a jail forked from the template ended before it was ready (" + jail->warmup_error() +
                           "); one started in its place");
    (void)jail->collect();
    jail = std::move(fresh);
    ++cold_;
    return true;
}

void Server::tick_sessions() {
    const uint64_t now = monotonic_ns();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session& s = it->second;
        WarmJail& j = *s.jail;
        if (!s.opened && j.state() == WarmJail::State::Ready) {
            s.opened = true;
            j.supervisor().begin_task(0);  // its figures and CPU budget count from here
            s.last_used_ns = now;
            log::info("serve",
                      "session " + s.id.substr(0, 8) + " open (pid " + std::to_string(j.supervisor().pid()) + ")");
            reply(s.open_client, s.open_id,
                  {{"session", s.id}, {"idle_timeout", s.idle_ms / 1000.0}, {"warm", s.warm}});
        }
        json r;
        while (j.pop_reply(r)) {
            if (!s.busy) continue;
            bool truncated = false;
            auto [out, err] = j.supervisor().take_output(&truncated);
            json ans = {{"session", s.id},          {"stdout", std::move(out)},
                        {"stderr", std::move(err)}, {"output_truncated", truncated},
                        {"value", r["value"]},      {"error", r["error"]},
                        {"files", r["files"]}};
            if (s.interrupted) ans["interrupted"] = true;
            if (s.timed_out) {
                ans["timeout"] = true;
                ans["time_limit_s"] = static_cast<double>(s.cell_timeout_ms) / 1000.0;
                if (ans["error"].is_object())
                    ans["error"]["message"] = "the cell ran past its time limit of " +
                                              json(static_cast<double>(s.cell_timeout_ms) / 1000.0).dump() +
                                              " s and was interrupted (KeyboardInterrupt); the session is kept";
            }
            reply(s.cell_client, s.cell_id, ans);
            s.busy = false;
            s.jail->supervisor().set_deadline(0, nullptr);
            s.last_used_ns = now;
            ++s.cells;
        }
        if (j.ended() && !s.opened && restart_failed_fork(s.jail, s.spec, *session_pool_)) {
            s.warm = false;
            ++it;
            continue;
        }
        if (j.ended()) {
            supervise::Outcome o = j.collect();
            const report::Result result = report::make_result(o, s.spec->plan, s.spec->policy, s.spec->plan_hash);
            const std::string status = report::to_string(result.status);
            std::string why = s.killed ? "the cell did not stop within the grace after SIGINT; the session was killed"
                                       : "the session's jail ended (status " + status + ")";
            log::info("serve", "session " + s.id.substr(0, 8) + " ended: " + why);
            if (s.busy) {
                // Whatever the cell printed before its jail ended is still its answer.
                bool truncated = false;
                auto [out, err] = j.supervisor().take_output(&truncated);
                json ans = error_body(s.killed ? "timeout" : "session_ended", why);
                ans["result"] = report::to_json(result);
                ans["stdout"] = std::move(out);
                ans["stderr"] = std::move(err);
                ans["output_truncated"] = truncated;
                reply(s.cell_client, s.cell_id, ans);
            } else if (!s.opened) {
                reply(s.open_client, s.open_id,
                      error_body("session_ended", j.warmup_error().empty() ? why : j.warmup_error()));
            }
            retire(std::move(s.jail));
            it = sessions_.erase(it);
            continue;
        }
        if (!s.busy && s.opened && (draining_ || (s.idle_ms && now - s.last_used_ns >= s.idle_ms * 1000000))) {
            // Idle past its timeout, or the server is draining: nobody needs it now.
            log::info("serve",
                      "session " + s.id.substr(0, 8) + (draining_ ? " closed for the drain" : " closed: idle"));
            retire(std::move(s.jail));
            it = sessions_.erase(it);
            continue;
        }
        ++it;
    }
}

void Server::tick_queue() {
    // Round-robin over the uids that wait, and among them those under their
    // fair share first: one tenant (however many clients it opens) cannot
    // starve another. Any jail may start while room or a pool jail is left.
    while (!queue_.empty()) {
        if (room() == 0 && pool_->size() == 0) return;
        const size_t share = std::max<size_t>(1, opt_.max_jails / active_uids());
        auto pick = queue_.end();
        for (int pass = 0; pass < 2 && pick == queue_.end(); ++pass) {
            auto it = queue_.upper_bound(rr_uid_);
            for (size_t n = 0; n < queue_.size(); ++n, ++it) {
                if (it == queue_.end()) it = queue_.begin();
                if (pass == 1 || jails_of(it->first) < share) {
                    pick = it;
                    break;
                }
            }
        }
        auto& q = pick->second;
        Queued w = std::move(q.front());
        q.pop_front();
        rr_uid_ = pick->first;
        if (q.empty()) queue_.erase(pick);
        auto& [count, held] = queued_by_client_[w.client];
        --count;
        held -= w.bytes;
        queued_bytes_ -= w.bytes;
        Client* c = client(w.client);
        if (!c) continue;
        auto job = std::make_unique<Job>();
        job->client = w.client;
        job->uid = c->uid();
        job->id = w.id;
        job->task = std::move(w.task);
        job->spec = std::move(w.spec);
        try {
            start_job(std::move(job));
        } catch (const std::exception& e) {
            log::error("serve", "task " + w.id + ": " + e.what());
            c->send(w.id, error_body("jail_failed", e.what()));
        }
    }
}

void Server::tick() {
    pool_->tick();
    session_pool_->tick();
    tick_jobs();
    tick_sessions();
    for (auto it = clients_.begin(); it != clients_.end();) {
        Client& c = *it->second;
        ++it;
        if (c.gone())
            drop_client(c.id());
        else
            c.pause(c.unread() > kPauseUnread);
    }
    if (!draining_) {
        tick_queue();
        // The pool refills only in the room that queued work does not need.
        size_t queued = 0;
        for (const auto& [uid, q] : queue_) queued += q.size();
        size_t r = room();
        // Starting a jail blocks this loop for a few milliseconds (clone, id
        // maps; on cgroup v1, the migration's RCU wait), so it waits while a
        // task runs, unless the pool is empty: an answer is not delayed by
        // the next task's jail.
        bool running = std::any_of(jobs_.begin(), jobs_.end(), [](const auto& j) { return j->dispatched; });
        if (!running || pool_->size() == 0) {
            pool_->refill(r > queued ? r - queued : 0);
            r = room();
            session_pool_->refill(r > queued ? r - queued : 0);  // after the tasks' pool: tasks are most
        }
    }
    // When to look again: the nearest idle session's end, or a pool retry
    // (cells' time limits are their jails' own timers).
    const uint64_t now = monotonic_ns();
    int t = pool_->retry_in_ms();
    if (int st = session_pool_->retry_in_ms(); st >= 0 && (t < 0 || st < t)) t = st;
    auto at = [&](uint64_t when) {
        if (!when) return;
        int ms = when <= now ? 0 : static_cast<int>(std::min<uint64_t>((when - now) / 1000000 + 1, INT_MAX));
        if (t < 0 || ms < t) t = ms;
    };
    for (const auto& [id, s] : sessions_) {
        if (!s.busy && s.opened && s.idle_ms) at(s.last_used_ns + s.idle_ms * 1000000);
    }
    if (t >= 0)
        wake_.arm_in_ms(static_cast<uint64_t>(t));
    else
        wake_.disarm();
}

void Server::drop_client(uint64_t id) {
    auto cit = clients_.find(id);
    if (cit == clients_.end()) return;
    log::info("serve", "client " + std::to_string(id) + " gone");
    clients_.erase(cit);
    for (auto it = queue_.begin(); it != queue_.end();) {
        auto& q = it->second;
        for (auto w = q.begin(); w != q.end();)
            if (w->client == id) {
                queued_bytes_ -= w->bytes;
                w = q.erase(w);
            } else {
                ++w;
            }
        it = q.empty() ? queue_.erase(it) : std::next(it);
    }
    queued_by_client_.erase(id);
    // Its tasks are killed: nobody is waiting for their answers.
    for (auto it = jobs_.begin(); it != jobs_.end();)
        if ((*it)->client == id) {
            retire(std::move((*it)->jail));
            it = jobs_.erase(it);
        } else {
            ++it;
        }
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session& s = it->second;
        if (!s.opened && s.open_client == id) {
            retire(std::move(s.jail));
            it = sessions_.erase(it);
            continue;
        }
        if (s.busy && s.cell_client == id) {
            // A cancelled cell (its caller gave up, as an MCP client does on
            // its own after 60 s) is interrupted as a timeout would be; the
            // session and its state stay for the next call.
            s.cell_client = 0;
            interrupt_cell(s, false);
        }
        ++it;
    }
}

void Server::begin_drain() {
    if (draining_) return;
    draining_ = true;
    log::info("serve", "draining: no new work; running tasks and cells finish");
    listen_w_.reset();
    listener_.reset();
    pool_->clear();
    session_pool_->clear();
    for (auto& [uid, q] : queue_)
        for (auto& w : q) reply(w.client, w.id, error_body("shutting_down", "the server is shutting down"));
    queue_.clear();
    queued_by_client_.clear();
    queued_bytes_ = 0;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (it->second.busy) {
            ++it;
        } else {
            retire(std::move(it->second.jail));
            it = sessions_.erase(it);
        }
    }
}

// A flood of refused connections is one line a second in the log, with a
// count, not a line each: the log is not a lever on the server either.
void Server::log_refusal(const std::string& why) {
    const uint64_t now = monotonic_ns();
    if (now - last_refusal_log_ns_ < 1000000000ull) {
        ++refusals_unlogged_;
        return;
    }
    std::string more =
        refusals_unlogged_ ? " (and " + std::to_string(refusals_unlogged_) + " more refusals before)" : "";
    log::warning("serve", why + more);
    refusals_unlogged_ = 0;
    last_refusal_log_ns_ = now;
}

void Server::accept_clients() {
    // A bounded number per round: a flood of connections takes its turn.
    for (int i = 0; i < 64 && listener_; ++i) {
        bool again = false;
        std::string why;
        std::optional<Peer> p = listener_->accept(&again, &why);
        if (!why.empty()) {
            ++refused_;
            log_refusal(why);
        }
        if (!p) {
            if (!again) return;
            continue;
        }
        if (clients_.size() >= fds_.clients) {
            ++refused_;
            std::string line = answer_line(
                "null", error_body("busy", std::to_string(fds_.clients) + " clients are connected; try again later"));
            (void)!::send(p->fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            log_refusal("refused uid " + std::to_string(p->uid) + " pid " + std::to_string(p->pid) +
                        ": the client cap (" + std::to_string(fds_.clients) + ") is reached");
            continue;
        }
        const uint64_t id = next_client_++;
        log::info("serve", "client " + std::to_string(id) + " connected: uid " + std::to_string(p->uid) + " pid " +
                               std::to_string(p->pid));
        auto c = std::make_unique<Client>(loop_, std::move(p->fd), id, p->uid,
                                          [this](Client& cl, std::string_view line) { on_line(cl, line); });
        clients_.emplace(id, std::move(c));
    }
}

// A server whose profile cannot run here (no cgroup where the profile
// requires one, a missing python) says so now, with the fix, and does not
// start: otherwise it would answer its clients and fail every request. One
// jail is built to the point of ready; it then joins the pool.
void Server::probe() {
    auto j = std::make_unique<WarmJail>(base_, loop_);
    j->start();  // throws Error: the one line, exit 125
    // The jail's own deadline (WarmJail::kReadyTimeoutMs) ends the wait.
    while (j->state() == WarmJail::State::Warming) loop_.run_once(100);
    if (j->state() == WarmJail::State::Ready) {
        if (opt_.pool) pool_->adopt(std::move(j));
        return;
    }
    std::string why = j->warmup_error();
    if (j->ended()) {
        supervise::Outcome o = j->collect();
        if (o.kind == supervise::Outcome::Kind::SetupError) why = o.message;
    }
    // A preload that fails is the pool's to report and retry (stats), not a
    // reason to refuse the whole server.
    if (why.rfind("preload ", 0) == 0) {
        log::warning("serve", why);
        return;
    }
    throw Error("serve: a jail of profile " + base_->policy.name + " cannot start here: " + why);
}

int Server::run() {
    // A task's output and its answer can be tens of MiB. Buffers past 1 MiB
    // are mapped of their own and go back to the kernel when freed: with
    // glibc's moving threshold, they came from the heap after the first
    // one, and one small block above them kept a 64 MiB peak for good.
    ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
    fds_ = size_fd_budget(opt_.max_jails);
    supervise::Proxy::set_process_budget(fds_.proxy);
    sigset_t set;
    ::sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&set, sig);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    signals_ = UniqueFd(check(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
    listener_ = std::make_unique<Listener>(opt_.socket, opt_.allow_uids, opt_.allow_gids);
    base_ = make_spec({}, false);
    session_spec_ = make_spec({}, true);
    // Root's supplementary groups must not follow it into the jails.
    if (base_->plan.clear_host_groups) check(::setgroups(0, nullptr), "setgroups", "(clear root's groups)");
    pool_ = std::make_unique<Pool>(base_, opt_.pool, loop_);
    session_pool_ =
        std::make_unique<Pool>(session_spec_, opt_.pool && opt_.max_sessions && !opt_.preload.empty() ? 1 : 0, loop_);
    probe();
    signals_w_ = IoWatch(loop_, signals_.get(), POLLIN, [this](short) {
        struct signalfd_siginfo si;
        while (::read(signals_.get(), &si, sizeof si) == sizeof si) begin_drain();
    });
    listen_w_ = IoWatch(loop_, listener_->fd(), POLLIN, [this](short) { accept_clients(); });
    wake_ = Timer(loop_, [] {});  // tick() runs after every round
    log::info("serve", "listening on " + listener_->path() + " (profile " + base_->policy.name + ", pool " +
                           std::to_string(opt_.pool) + (opt_.preload.empty() ? "" : ", preload " + opt_.preload) +
                           ", max " + std::to_string(opt_.max_jails) + " jails, " + std::to_string(fds_.clients) +
                           " clients, " + std::to_string(fds_.proxy) + " proxy connections; fd limit " +
                           std::to_string(fds_.limit) + ")");
    tick();
    while (!draining_ || !jobs_.empty() || !sessions_.empty()) {
        loop_.run_once();
        tick();
    }
    // Answers still queued, for clients that read them, for up to 2 s.
    signals_w_.reset();
    for (auto& [id, c] : clients_) c->stop_reading();
    const uint64_t until = monotonic_ns() + 2000000000ull;
    while (monotonic_ns() < until) {
        bool pending = false;
        for (auto& [id, c] : clients_) pending |= c->has_output() && !c->gone();
        if (!pending) break;
        loop_.run_once(100);
    }
    log::info("serve", "drained; exiting");
    return 0;
}

}  // namespace

std::string default_socket_path() {
    if (::geteuid() == 0) return "/run/stockade/serve.sock";
    const char* x = std::getenv("XDG_RUNTIME_DIR");
    if (x && *x == '/') return std::string(x) + "/stockade/serve.sock";
    return "/tmp/stockade-" + std::to_string(::geteuid()) + "/serve.sock";
}

int serve(const profile::CommandLine& cl, const ServeOptions& given, char** envp) {
    ServeOptions opt = given;
    if (opt.socket.empty()) opt.socket = default_socket_path();
    if (opt.max_jails == 0) throw Error("serve: --max-jails: expected at least 1");
    for (char ch : opt.preload)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == ','))
            throw Error("serve: --preload: expected module names separated by commas");
    // Our own stdin is no jail's: jails start from /dev/null.
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, 0);
        if (null > 0) ::close(null);
    }
    Server s(cl, opt, envp);
    return s.run();
}

int check_server(const std::string& given) {
    const std::string path = given.empty() ? default_socket_path() : given;
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a = unix_address(path);
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        std::cerr << "stockade: serve --check: no server on " << path << ": " << std::strerror(errno) << "\n";
        return 1;
    }
    const std::string req = "{\"id\":\"check\",\"op\":\"stats\"}\n";
    if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return 1;
    std::string got;
    char buf[4096];
    struct pollfd p {
        fd.get(), POLLIN, 0
    };
    while (got.find('\n') == std::string::npos && got.size() < (1u << 20) && ::poll(&p, 1, 5000) == 1) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    JsonIn st = parse_json(got.substr(0, got.find('\n')), JsonBounds{});
    if (!st.ok() || !st.value.is_object() || st.value.contains("error")) {
        std::cerr << "stockade: serve --check: the server on " << path << " did not answer"
                  << (st.value.is_object() && st.value["error"].is_object()
                          ? ": " + st.value["error"].value("message", std::string())
                          : std::string())
                  << "\n";
        return 1;
    }
    std::cout << st.value.dump() << "\n";
    return 0;
}

}  // namespace stockade::serve
