// One jail whose program is serve's runner: started ahead of its task (warm)
// or for it (cold), it says when it is ready, takes one task (or, as a
// session, many cells) over its control socket, and ends. The server drives
// it; everything the runner sends is read as hostile input: bounded lines,
// JSON or nothing.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "plan/plan.hpp"
#include "profile/policy.hpp"
#include "supervise/supervisor.hpp"
#include "util/line_buffer.hpp"

namespace stockade::serve {

// A Policy and its Plan, shared by every jail made from them.
struct JailSpec {
    profile::Policy policy;
    plan::Plan plan;
    std::string plan_hash;  // plan::fingerprint(plan), for every result of this spec
    bool session = false;
    std::string preload;  // comma-separated module names
    // The spec of the template its pool forks jails from (Plan::template_program),
    // or nullptr: each jail starts a python of its own.
    std::shared_ptr<const JailSpec> templ;
};

class WarmJail {
public:
    enum class State { Warming, Ready, Busy, Ended };
    // How long a jail may take to get ready before it is killed: a python
    // start and its preloads, or a fork of a template. A request may be
    // waiting on it, and its own timeout starts only once the jail is ready.
    static constexpr uint64_t kReadyTimeoutMs = 60000;
    static constexpr uint64_t kForkReadyTimeoutMs = 20000;  // its hello within 10 s: Supervisor

    // On the loop once started, and off it when destroyed. templ: a ready
    // template of this spec to fork from (Pool), or nullptr to clone. A
    // forked jail lives in the template's PID namespace, which ends with the
    // template, so it holds the template until it is gone itself.
    WarmJail(std::shared_ptr<const JailSpec> spec, EventLoop& loop, std::shared_ptr<WarmJail> templ = nullptr);
    ~WarmJail();
    WarmJail(const WarmJail&) = delete;
    WarmJail& operator=(const WarmJail&) = delete;
    // Throws Error when the jail cannot be started.
    void start();

    State state() const { return state_; }
    // Ready, and its init and runner still there as of now (the loop may
    // not yet have seen a death: a killed template takes its forks, a task
    // of a tenant may be killed from outside).
    bool ready_now() const { return state_ == State::Ready && !sup_.gone_unseen(); }
    const JailSpec& spec() const { return *spec_; }
    supervise::Supervisor& supervisor() { return sup_; }
    // The jail's init on the host (held through a pidfd while this lives).
    pid_t pid() const { return sup_.pid(); }
    // The runner said it could not get ready (a preload failed), or ended
    // before it did.
    const std::string& warmup_error() const { return warmup_error_; }
    bool ended() const { return state_ == State::Ended; }
    // Ended without ever getting ready (then, and only then, warmup_error is set).
    bool ended_unready() const { return ended() && !warmup_error_.empty(); }
    // Forked from a template rather than cloned.
    bool forked() const { return templ_ != nullptr; }
    bool forked_from(const WarmJail* t) const { return t && templ_.get() == t; }

    // Hands the runner a task (or a cell). The clock is the caller's to start
    // (supervisor().begin_task): per task, or once for a whole session.
    // line: one encoded control message, ending in a newline (Task::to_runner).
    void dispatch(std::string line);
    // The runner's answers, in order, each cleaned to the fields the server
    // uses: {"done", "files" {path: {text|b64|error}}, "value", "error"}.
    bool pop_reply(nlohmann::json& out);
    // Once ended: how the jail ended.
    supervise::Outcome collect();
    void kill() { sup_.kill(); }

private:
    void on_line(std::string_view line);
    void read_control(bool all);
    void write_control();
    void close_control();
    void watch_control();
    void check_ended();

    std::shared_ptr<WarmJail> templ_;  // first in, last out: after sup_ has ended this jail
    std::shared_ptr<const JailSpec> spec_;
    EventLoop& loop_;
    supervise::Supervisor sup_;
    IoWatch control_w_;
    Hook after_round_;
    Timer ready_wait_;
    State state_ = State::Warming;
    std::string warmup_error_;
    LineBuffer in_;
    std::string out_;
    size_t out_off_ = 0;
    std::deque<nlohmann::json> replies_;
    int exit_code_ = -1;  // a task's, as its runner's answer gave it
    bool control_open_ = false;
};

}  // namespace stockade::serve
