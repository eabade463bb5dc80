#include "serve/server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <random>

#include "plan/host.hpp"
#include "plan/plan.hpp"
#include "report/result.hpp"
#include "serve/client.hpp"
#include "serve/pool.hpp"
#include "serve/request.hpp"
#include "serve/runner.hpp"
#include "serve/warm_jail.hpp"
#include "jail_interface.hpp"
#include "supervise/event_loop.hpp"
#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::serve {
namespace {

using nlohmann::json;
using supervise::EventLoop;

json error_answer(const json& id, const std::string& code, const std::string& message) {
    return {{"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

std::string random_id() {
    std::random_device rd;
    char buf[33];
    for (int i = 0; i < 4; ++i) std::snprintf(buf + 8 * i, 9, "%08x", rd());
    return buf;
}

// The socket's directory is ours alone: made 0700, or, if it is there, owned
// by us and writable by nobody else (else a planted socket could be ours).
void prepare_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) throw_sys("mkdir", dir);
    struct stat st;
    check(::lstat(dir.c_str(), &st), "stat", dir);
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022))
        throw Error("serve: " + dir + " must be a directory owned by uid " + std::to_string(::geteuid()) +
                    " and writable by nobody else");
}

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path) throw Error("serve: socket path too long (at most 107 bytes): " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size());
    return a;
}

UniqueFd listen_on(const std::string& path, ino_t* ino) {
    size_t slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) prepare_dir(path.substr(0, slash));
    sockaddr_un a = address(path);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw Error("serve: " + path + " exists and is not a socket");
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
            throw Error("serve: a server is already listening on " + path + " (stockade serve --check)");
        ::unlink(path.c_str());  // left by a server that was killed
    }
    UniqueFd fd(check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket", path));
    mode_t old = ::umask(0177);
    int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::umask(old);
    if (rc < 0) throw_sys("bind", path);
    check(::listen(fd.get(), 128), "listen", path);
    check(::lstat(path.c_str(), &st), "stat", path);
    *ino = st.st_ino;
    return fd;
}

// A run request in flight, from its client's point of view.
struct Job {
    uint64_t client = 0;
    json id;
    Task task;
    std::shared_ptr<const JailSpec> spec;
    std::unique_ptr<WarmJail> jail;
    bool warm = false, dispatched = false;
    json reply;  // the runner's "done", when it came
};

struct Session {
    std::string id;
    uid_t owner = 0;
    std::shared_ptr<const JailSpec> spec;
    std::unique_ptr<WarmJail> jail;
    bool opened = false;          // ready, and its opener answered
    uint64_t open_client = 0;
    json open_id;
    bool busy = false;            // a cell is running
    uint64_t cell_client = 0;
    json cell_id;
    uint64_t deadline_ns = 0, kill_at_ns = 0;
    bool interrupted = false, killed = false;
    uint64_t last_used_ns = 0, idle_ms = 0;
    uint64_t cells = 0;
};

struct Queued {
    uint64_t client;
    json req;
};

class Server : public supervise::Source {
public:
    Server(const profile::CommandLine& cl, const ServeOptions& opt, char** envp)
        : cl_(cl), opt_(opt), envp_(envp) {}

    int run();

    void fill(std::vector<pollfd>& fds) override;
    void handle(const pollfd* fds, size_t n) override;
    int timeout_ms() const override { return timeout_; }

private:
    std::shared_ptr<const JailSpec> make_spec(const std::vector<std::string>& extra_sets, bool session);
    void on_line(Client& c, const std::string& line);
    void on_request(Client& c, const json& req);
    void op_run(Client& c, const json& req);
    void start_job(std::unique_ptr<Job> job);
    void op_session_open(Client& c, const json& req);
    void op_session_run(Client& c, const json& req);
    void op_session_close(Client& c, const json& req);
    void op_session_list(Client& c, const json& req);
    void op_stats(Client& c, const json& req);
    void tick();
    void tick_jobs();
    void tick_sessions();
    void tick_queue();
    void finish_job(Job& job);
    void end_session(std::map<std::string, Session>::iterator it, const json& answer_if_busy);
    void drop_client(uint64_t id);
    void begin_drain();
    Client* client(uint64_t id);
    void reply(uint64_t client, const json& msg);
    size_t live_jails() const;
    size_t room() const { return opt_.max_jails > live_jails() ? opt_.max_jails - live_jails() : 0; }

    profile::CommandLine cl_;
    ServeOptions opt_;
    char** envp_;
    EventLoop loop_;
    UniqueFd listen_, signals_;
    std::shared_ptr<const JailSpec> base_, session_spec_;
    std::unique_ptr<Pool> pool_;
    std::map<uint64_t, std::unique_ptr<Client>> clients_;
    std::vector<std::unique_ptr<Job>> jobs_;
    std::map<std::string, Session> sessions_;
    std::map<uint64_t, std::deque<Queued>> queue_;
    uint64_t next_client_ = 1, rr_ = 0;
    bool draining_ = false;
    int timeout_ = -1;
    uint64_t served_ = 0, cold_ = 0, warm_served_ = 0, task_failures_ = 0;
    int slot_listen_ = -1, slot_signals_ = -1;
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
    inv.writable_work = true;
    inv.args = {std::to_string(jail::kControlFd), session ? "session" : "task", opt_.preload};
    plan::HostFacts host = plan::gather_host_facts(envp_);
    host.stdio_ttys = 0;  // the server's terminal, if any, is nobody's in a jail
    spec->plan = plan::make(spec->policy, inv, host);
    plan::check_sources(spec->plan);
    return spec;
}

size_t Server::live_jails() const {
    size_t n = pool_ ? pool_->size() : 0;
    for (const auto& j : jobs_)
        if (j->jail) ++n;
    for (const auto& [id, s] : sessions_)
        if (s.jail) ++n;
    return n;
}

Client* Server::client(uint64_t id) {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second.get();
}

void Server::reply(uint64_t id, const json& msg) {
    if (Client* c = client(id)) c->send(msg);
}

void Server::on_line(Client& c, const std::string& line) {
    json req = json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.is_object()) {
        c.send(error_answer(nullptr, "bad_request", "expected one JSON object per line"));
        return;
    }
    json id = req.contains("id") ? req["id"] : json(nullptr);
    try {
        if (!req.contains("id")) throw RequestError("bad_request", "id: required (any JSON value, echoed in the answer)");
        if (draining_) throw RequestError("shutting_down", "the server is shutting down");
        on_request(c, req);
    } catch (const RequestError& e) {
        c.send(error_answer(id, e.code, e.what()));
    } catch (const profile::ProfileError& e) {
        c.send(error_answer(id, "bad_request", e.diagnostics.front().str()));
    } catch (const Error& e) {
        c.send(error_answer(id, "internal", e.what()));
    } catch (const std::exception& e) {
        c.send(error_answer(id, "internal", e.what()));
    }
}

void Server::on_request(Client& c, const json& req) {
    const std::string op = string_field(req, "op", true);
    if (op == "run") return op_run(c, req);
    if (op == "session.open") return op_session_open(c, req);
    if (op == "session.run") return op_session_run(c, req);
    if (op == "session.close") return op_session_close(c, req);
    if (op == "session.list") return op_session_list(c, req);
    if (op == "stats") return op_stats(c, req);
    throw RequestError("bad_request", "op: unknown \"" + op.substr(0, 64) +
                                          "\" (expected run, session.open, session.run, session.close, session.list, stats)");
}

void Server::op_run(Client& c, const json& req) {
    auto job = std::make_unique<Job>();
    job->client = c.id();
    job->id = req["id"];
    job->task = parse_task(req, false, base_->policy.limits);
    if (job->task.limit_sets.empty()) {
        job->spec = base_;
    } else {
        job->spec = make_spec(job->task.limit_sets, false);
        check_lowered(base_->policy.limits, job->spec->policy.limits);
    }
    auto& q = queue_[c.id()];
    if (!q.empty() || (room() == 0 && !(job->spec == base_ && pool_->size()))) {
        if (q.size() >= 64) throw RequestError("busy", "64 requests of this client are already waiting for a jail");
        q.push_back({c.id(), req});
        return;
    }
    start_job(std::move(job));
}

void Server::start_job(std::unique_ptr<Job> job) {
    if (job->spec == base_) {
        job->jail = pool_->take(false);
        job->warm = static_cast<bool>(job->jail);
        // One already on its way is sooner than one started now.
        if (!job->jail) job->jail = pool_->take(true);
    }
    if (!job->jail) {
        // Cold: a jail of its own, built now. The answer says so.
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
    json ans = json::parse(report::result_json(o, job.spec->plan, job.spec->policy), nullptr, false);
    if (!ans.is_object()) ans = json::object();
    ans["id"] = job.id;
    ans["warm"] = job.warm;
    ans["stdout"] = std::move(out);
    ans["stderr"] = std::move(err);
    json files = json::object();
    if (job.reply.is_object())
        if (auto f = job.reply.find("files"); f != job.reply.end() && f->is_object()) files = *f;
    ans["files"] = std::move(files);
    if (!job.jail->warmup_error().empty()) ans["error"] = {{"code", "jail_failed"}, {"message", job.jail->warmup_error()}};
    reply(job.client, ans);
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
            j.dispatch(job.task.to_runner);
            job.dispatched = true;
        }
        json r;
        while (j.pop_reply(r))
            if (r.is_object() && r.contains("done")) job.reply = std::move(r);
        if (!j.ended()) {
            ++it;
            continue;
        }
        if (!job.dispatched) ++task_failures_;
        finish_job(job);
        it = jobs_.erase(it);  // the jail's cgroup goes now, after the answer
    }
}

void Server::op_session_open(Client& c, const json& req) {
    for (const auto& [k, v] : req.items())
        if (k != "id" && k != "op" && k != "idle_timeout")
            throw RequestError("bad_request", "unknown field \"" + k + "\" (session.open takes idle_timeout)");
    if (sessions_.size() >= opt_.max_sessions)
        throw RequestError("busy", std::to_string(opt_.max_sessions) + " sessions are open (--max-sessions)");
    if (room() == 0) throw RequestError("busy", std::to_string(opt_.max_jails) + " jails are running (--max-jails)");
    Session s;
    s.id = random_id();
    s.owner = c.uid();
    s.spec = session_spec_;
    s.open_client = c.id();
    s.open_id = req["id"];
    s.idle_ms = opt_.idle_timeout_ms;
    if (auto t = req.find("idle_timeout"); t != req.end() && !t->is_null()) {
        if (!t->is_number() || !(t->get<double>() > 0)) throw RequestError("bad_request", "idle_timeout: expected seconds above 0");
        s.idle_ms = std::min<uint64_t>(opt_.idle_timeout_ms, static_cast<uint64_t>(t->get<double>() * 1000));
    }
    s.jail = std::make_unique<WarmJail>(s.spec, loop_);
    s.jail->start();
    s.last_used_ns = monotonic_ns();
    sessions_.emplace(s.id, std::move(s));
}

void Server::op_session_run(Client& c, const json& req) {
    const std::string sid = string_field(req, "session", true);
    auto it = sessions_.find(sid);
    if (it == sessions_.end() || it->second.owner != c.uid() || !it->second.opened)
        throw RequestError("no_such_session", "session: no open session \"" + sid.substr(0, 64) + "\"");
    Session& s = it->second;
    if (s.busy) throw RequestError("busy", "session: a cell is already running in it");
    Task t = parse_task(req, true, s.spec->policy.limits);
    s.busy = true;
    s.cell_client = c.id();
    s.cell_id = req["id"];
    s.interrupted = false;
    const uint64_t ms = t.timeout_ms ? t.timeout_ms : s.spec->policy.limits.wall_ms;
    s.deadline_ns = ms ? monotonic_ns() + ms * 1000000 : 0;
    s.kill_at_ns = 0;
    s.jail->dispatch(t.to_runner);
}

void Server::op_session_close(Client& c, const json& req) {
    const std::string sid = string_field(req, "session", true);
    auto it = sessions_.find(sid);
    if (it == sessions_.end() || it->second.owner != c.uid())
        throw RequestError("no_such_session", "session: no open session \"" + sid.substr(0, 64) + "\"");
    end_session(it, error_answer(it->second.cell_id, "session_closed", "the session was closed while this cell ran"));
    c.send({{"id", req["id"]}, {"closed", sid}});
}

void Server::op_session_list(Client& c, const json& req) {
    json list = json::array();
    const uint64_t now = monotonic_ns();
    for (const auto& [id, s] : sessions_)
        if (s.owner == c.uid() && s.opened)
            list.push_back({{"session", id},
                            {"busy", s.busy},
                            {"cells", s.cells},
                            {"idle_s", static_cast<double>(now - s.last_used_ns) / 1e9}});
    c.send({{"id", req["id"]}, {"sessions", list}});
}

void Server::op_stats(Client& c, const json& req) {
    size_t busy = 0;
    for (const auto& j : jobs_)
        if (j->jail) ++busy;
    size_t queued = 0;
    for (const auto& [cid, q] : queue_) queued += q.size();
    c.send({{"id", req["id"]},
            {"pool", pool_->target()},
            {"warm", pool_->ready()},
            {"warming", pool_->size() - pool_->ready()},
            {"busy", busy},
            {"queued", queued},
            {"sessions", sessions_.size()},
            {"jails", live_jails()},
            {"max_jails", opt_.max_jails},
            {"refills", pool_->refills()},
            {"failures", pool_->failures() + task_failures_},
            {"last_failure", pool_->last_error()},
            {"served", served_},
            {"served_warm", warm_served_},
            {"cold_starts", cold_},
            {"preload", opt_.preload},
            {"profile", base_->policy.name},
            {"pid", ::getpid()}});
}

void Server::end_session(std::map<std::string, Session>::iterator it, const json& answer_if_busy) {
    Session& s = it->second;
    if (s.busy) reply(s.cell_client, answer_if_busy);
    if (!s.opened) reply(s.open_client, error_answer(s.open_id, "session_ended", "the session ended before it was ready"));
    sessions_.erase(it);  // kills the jail, removes its cgroup
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
            reply(s.open_client, {{"id", s.open_id}, {"session", s.id}, {"idle_timeout", s.idle_ms / 1000.0}});
        }
        json r;
        while (j.pop_reply(r)) {
            if (!s.busy || !r.is_object() || !r.contains("done")) continue;
            bool truncated = false;
            auto [out, err] = j.supervisor().take_output(&truncated);
            json ans = {{"id", s.cell_id}, {"session", s.id}, {"stdout", std::move(out)}, {"stderr", std::move(err)},
                        {"output_truncated", truncated}, {"value", nullptr}, {"error", nullptr}, {"files", json::object()}};
            if (auto v = r.find("value"); v != r.end() && v->is_string()) ans["value"] = *v;
            if (auto e = r.find("error"); e != r.end() && e->is_object()) ans["error"] = *e;
            if (auto f = r.find("files"); f != r.end() && f->is_object()) ans["files"] = *f;
            if (s.interrupted) ans["interrupted"] = true;
            reply(s.cell_client, ans);
            s.busy = false;
            s.deadline_ns = s.kill_at_ns = 0;
            s.last_used_ns = now;
            ++s.cells;
        }
        if (j.ended()) {
            supervise::Outcome o = j.collect();
            json result = json::parse(report::result_json(o, s.spec->plan, s.spec->policy), nullptr, false);
            std::string why = s.killed ? "the cell did not stop within the grace after SIGINT; the session was killed"
                                       : "the session's jail ended (status " +
                                             (result.is_object() ? result.value("status", std::string("?")) : "?") + ")";
            json ans = error_answer(s.cell_id, s.killed ? "timeout" : "session_ended", why);
            ans["result"] = result;
            if (!s.opened) ans = error_answer(s.open_id, "session_ended", j.warmup_error().empty() ? why : j.warmup_error());
            if (s.busy) reply(s.cell_client, ans);
            else if (!s.opened) reply(s.open_client, ans);
            it = sessions_.erase(it);
            continue;
        }
        if (s.busy && s.deadline_ns && now >= s.deadline_ns && !s.interrupted) {
            s.interrupted = true;
            j.supervisor().signal(SIGINT);
            s.kill_at_ns = now + std::max<uint64_t>(100, s.spec->policy.limits.grace_ms) * 1000000;
        } else if (s.busy && s.kill_at_ns && now >= s.kill_at_ns && !s.killed) {
            s.killed = true;
            j.kill();
        } else if (!s.busy && s.opened && s.idle_ms && now - s.last_used_ns >= s.idle_ms * 1000000) {
            it = sessions_.erase(it);
            continue;
        }
        ++it;
    }
}

void Server::tick_queue() {
    // Round-robin over the clients that wait: one busy client cannot starve the others.
    while (!queue_.empty()) {
        bool started = false;
        auto it = queue_.upper_bound(rr_);
        if (it == queue_.end()) it = queue_.begin();
        auto& q = it->second;
        if (q.empty()) {
            queue_.erase(it);
            continue;
        }
        if (room() == 0 && !pool_->size()) return;
        Queued w = std::move(q.front());
        q.pop_front();
        rr_ = it->first;
        if (q.empty()) queue_.erase(it);
        if (Client* c = client(w.client)) {
            auto job = std::make_unique<Job>();
            job->client = w.client;
            job->id = w.req["id"];
            try {
                job->task = parse_task(w.req, false, base_->policy.limits);
                job->spec = job->task.limit_sets.empty() ? base_ : make_spec(job->task.limit_sets, false);
                start_job(std::move(job));
                started = true;
            } catch (const std::exception& e) {
                c->send(error_answer(w.req["id"], "internal", e.what()));
            }
        }
        (void)started;
    }
}

void Server::tick() {
    pool_->tick();
    tick_jobs();
    tick_sessions();
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->second->gone()) {
            uint64_t id = it->first;
            ++it;
            drop_client(id);
        } else {
            ++it;
        }
    }
    if (!draining_) {
        tick_queue();
        // The pool refills only in the room that queued work does not need.
        size_t queued = 0;
        for (const auto& [cid, q] : queue_) queued += q.size();
        size_t r = room();
        // Starting a jail blocks this loop for a few milliseconds (clone, id
        // maps; on cgroup v1, the migration's RCU wait), so it waits while a
        // task runs, unless the pool is empty: an answer is not delayed by
        // the next task's jail.
        bool running = std::any_of(jobs_.begin(), jobs_.end(), [](const auto& j) { return j->dispatched; });
        if (!running || pool_->size() == 0) pool_->refill(r > queued ? r - queued : 0);
    }
    // When to look again: the nearest session deadline, or a pool retry.
    const uint64_t now = monotonic_ns();
    int t = pool_->retry_in_ms();
    auto at = [&](uint64_t when) {
        if (!when) return;
        int ms = when <= now ? 0 : static_cast<int>((when - now) / 1000000 + 1);
        if (t < 0 || ms < t) t = ms;
    };
    for (const auto& [id, s] : sessions_) {
        if (s.busy) at(s.interrupted ? s.kill_at_ns : s.deadline_ns);
        else if (s.opened && s.idle_ms) at(s.last_used_ns + s.idle_ms * 1000000);
    }
    timeout_ = t;
}

void Server::drop_client(uint64_t id) {
    auto cit = clients_.find(id);
    if (cit == clients_.end()) return;
    loop_.remove(cit->second.get());
    clients_.erase(cit);
    queue_.erase(id);
    // Its tasks are killed: nobody is waiting for their answers.
    for (auto it = jobs_.begin(); it != jobs_.end();)
        if ((*it)->client == id) it = jobs_.erase(it);
        else ++it;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session& s = it->second;
        if ((s.busy && s.cell_client == id) || (!s.opened && s.open_client == id)) it = sessions_.erase(it);
        else ++it;
    }
}

void Server::begin_drain() {
    if (draining_) return;
    draining_ = true;
    listen_.reset();
    pool_->clear();
    for (auto& [cid, q] : queue_)
        for (auto& w : q) reply(cid, error_answer(w.req["id"], "shutting_down", "the server is shutting down"));
    queue_.clear();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (it->second.busy) ++it;
        else it = sessions_.erase(it);
    }
}

void Server::fill(std::vector<pollfd>& fds) {
    const size_t base = fds.size();
    slot_listen_ = slot_signals_ = -1;
    if (listen_) {
        slot_listen_ = static_cast<int>(fds.size() - base);
        fds.push_back({listen_.get(), POLLIN, 0});
    }
    slot_signals_ = static_cast<int>(fds.size() - base);
    fds.push_back({signals_.get(), POLLIN, 0});
}

void Server::handle(const pollfd* fds, size_t n) {
    if (slot_signals_ >= 0 && static_cast<size_t>(slot_signals_) < n && (fds[slot_signals_].revents & POLLIN)) {
        struct signalfd_siginfo si;
        while (::read(signals_.get(), &si, sizeof si) == sizeof si) begin_drain();
    }
    if (slot_listen_ >= 0 && listen_ && static_cast<size_t>(slot_listen_) < n && (fds[slot_listen_].revents & POLLIN)) {
        for (int i = 0; i < 64; ++i) {
            int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) break;
            UniqueFd conn(fd);
            struct ucred cred {};
            socklen_t len = sizeof cred;
            if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) continue;
            bool ok = cred.uid == ::geteuid() ||
                      std::find(opt_.allow_uids.begin(), opt_.allow_uids.end(), cred.uid) != opt_.allow_uids.end() ||
                      std::find(opt_.allow_gids.begin(), opt_.allow_gids.end(), cred.gid) != opt_.allow_gids.end();
            if (!ok) {
                std::string msg = error_answer(nullptr, "forbidden", "uid " + std::to_string(cred.uid) +
                                                                         " may not use this server (--allow-uid)").dump() + "\n";
                (void)!::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                continue;
            }
            const uint64_t id = next_client_++;
            auto c = std::make_unique<Client>(std::move(conn), id, cred.uid,
                                              [this](Client& cl, const std::string& line) { on_line(cl, line); });
            loop_.add(c.get());
            clients_.emplace(id, std::move(c));
        }
    }
}

// Socket activation (sd_listen_fds(3)): one listening socket at fd 3, meant
// for this process; -1 otherwise.
int activated_socket() {
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    if (!pid || !fds || std::atoi(pid) != ::getpid() || std::atoi(fds) != 1) return -1;
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) return -1;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return 3;
}

// The socket file goes with the server, unless another server has replaced it.
struct SocketFile {
    std::string path;
    ino_t ino = 0;
    ~SocketFile() {
        struct stat st;
        if (ino && ::lstat(path.c_str(), &st) == 0 && st.st_ino == ino) ::unlink(path.c_str());
    }
};

int Server::run() {
    base_ = make_spec({}, false);
    session_spec_ = make_spec({}, true);
    sigset_t set;
    ::sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&set, sig);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    signals_ = UniqueFd(check(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
    SocketFile sock{opt_.socket};
    if (int fd = activated_socket(); fd >= 0) {
        // systemd's socket (stockade-serve.socket) made and owns it.
        listen_ = UniqueFd(fd);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        opt_.socket = "the socket systemd passed (fd 3)";
    } else {
        listen_ = listen_on(opt_.socket, &sock.ino);
    }
    // Root's supplementary groups must not follow it into the jails.
    if (base_->plan.clear_host_groups) check(::setgroups(0, nullptr), "setgroups", "(clear root's groups)");
    pool_ = std::make_unique<Pool>(base_, opt_.pool, loop_);
    loop_.add(this);
    std::cerr << "stockade serve: listening on " << (opt_.socket) << " (profile " << base_->policy.name << ", pool "
              << opt_.pool << (opt_.preload.empty() ? "" : ", preload " + opt_.preload) << ")\n";
    tick();
    while (!draining_ || !jobs_.empty() || !sessions_.empty()) {
        loop_.run_once();
        tick();
    }
    // Answers still queued, for clients that read them, for up to 2 s.
    loop_.remove(this);
    for (auto& [id, c] : clients_) c->stop_reading();
    const uint64_t until = monotonic_ns() + 2000000000ull;
    while (monotonic_ns() < until) {
        bool pending = false;
        for (auto& [id, c] : clients_) pending |= c->has_output() && !c->gone();
        if (!pending) break;
        loop_.run_once(100);
    }
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
    sockaddr_un a = address(path);
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        std::cerr << "stockade: serve --check: no server on " << path << ": " << std::strerror(errno) << "\n";
        return 1;
    }
    const std::string req = "{\"id\":\"check\",\"op\":\"stats\"}\n";
    if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return 1;
    std::string got;
    char buf[4096];
    struct pollfd p{fd.get(), POLLIN, 0};
    while (got.find('\n') == std::string::npos && ::poll(&p, 1, 5000) == 1) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
    }
    json st = json::parse(got.substr(0, got.find('\n')), nullptr, false);
    if (!st.is_object() || st.contains("error")) {
        std::cerr << "stockade: serve --check: the server on " << path << " did not answer"
                  << (st.is_object() ? ": " + st["error"].value("message", std::string()) : std::string()) << "\n";
        return 1;
    }
    std::cout << st.dump() << "\n";
    return 0;
}

}  // namespace stockade::serve
