// The warm pool: N jails of one spec kept started, python running, the
// preloads imported, each waiting for one task. Refilled in the background
// within the room the server gives it; a spec whose jails keep failing to get
// ready is retried with a growing pause, not in a loop.
//
// Where the spec has a template (JailSpec::templ), the pool keeps one: a
// python that imported the preloads once and forks each refill, which then
// makes its own namespaces, mounts, cgroup, Landlock rules and filter
// (serve/runner.py) before any task code reaches it. Without a ready
// template (starting, failed, or dead and waiting to be rebuilt) the pool
// starts each jail as before.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "serve/warm_jail.hpp"

namespace stockade::serve {

class Pool {
public:
    Pool(std::shared_ptr<const JailSpec> spec, size_t target, EventLoop& loop)
        : spec_(std::move(spec)), target_(target), loop_(loop) {}

    // A ready jail (or, with warming, one still starting), or nullptr.
    std::unique_ptr<WarmJail> take(bool warming);
    // Starts jails until `target` are warming or ready, at most `room` more.
    void refill(size_t room);
    // Drops jails that ended while waiting (their failure counted).
    void tick();
    void clear() {
        jails_.clear();
        retire_template();
    }
    // Gives up one waiting jail (the one furthest from ready) to make room
    // for a jail of another spec; false if the pool holds none.
    bool drop_one();
    // Takes a jail started elsewhere (the server's start-up probe) as one of its own.
    void adopt(std::unique_ptr<WarmJail> j);
    // How long until the next refill may be tried (ms, -1: not waiting).
    int retry_in_ms() const;

    size_t size() const { return jails_.size(); }
    // Every jail of this pool that is alive, for --max-jails: those waiting,
    // and its templates (the current one, and any older one that jails
    // forked from it still hold).
    size_t live() const;
    // The template's init on the host, or -1 (none ready).
    pid_t template_pid() const;
    uint64_t forks() const { return forks_; }
    uint64_t template_failures() const { return template_failures_; }
    const std::string& template_error() const { return template_error_; }
    size_t ready() const;
    // The init pid of each ready jail.
    std::vector<pid_t> ready_pids() const;
    // A jail of this pool (in it or taken) that ended: a template's fork
    // that never got ready counts as the template's failure.
    void ended_unready(const WarmJail& j);
    size_t target() const { return target_; }
    uint64_t refills() const { return refills_; }
    uint64_t failures() const { return failures_; }
    const std::string& last_error() const { return last_error_; }

private:
    void keep_template(size_t& room);
    void retire_template();
    std::shared_ptr<WarmJail> ready_template() const;
    void template_failed(const std::string& why);
    void jail_failed(const std::string& why);
    void served_ready(const WarmJail& j);

    std::shared_ptr<const JailSpec> spec_;
    size_t target_;
    EventLoop& loop_;
    std::vector<std::unique_ptr<WarmJail>> jails_;
    uint64_t refills_ = 0, failures_ = 0;
    unsigned consecutive_failures_ = 0;
    uint64_t not_before_ns_ = 0;
    std::string last_error_;
    std::shared_ptr<WarmJail> template_;  // jails forked from it hold it too
    std::vector<std::weak_ptr<WarmJail>> retired_;
    uint64_t forks_ = 0, template_failures_ = 0, template_failures_in_row_ = 0, template_not_before_ns_ = 0;
    std::string template_error_;
};

}  // namespace stockade::serve
