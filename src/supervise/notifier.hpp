// The supervisor's end of the filters: every refused syscall arrives here as a
// seccomp user notification, is recorded by name and arguments, and is
// answered with its errno (or, under default_action = "kill", ends the
// process). Allowed syscalls never come here.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "seccomp/spec.hpp"
#include "seccomp/violation.hpp"
#include "util/fd.hpp"

struct seccomp_notif;
struct seccomp_notif_resp;

namespace stockade::supervise {

using seccomp::Spec;
using seccomp::Violation;

class Notifier {
public:
    explicit Notifier(const Spec& spec);
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;
    void add_listener(int fd) { listeners_.emplace_back(fd); }
    void close_listener(int fd) {
        for (auto& l : listeners_)
            if (l.get() == fd) l.reset();
    }
    const std::vector<UniqueFd>& listeners() const { return listeners_; }

    // Answers one pending notification on fd. Returns false when the listener
    // is finished (the filter's processes are all gone).
    bool handle(int fd);
    // Answers what is pending on fd, as far as the rate allows.
    void drain(int fd);

    // The supervisor's CPU is not the jail's: a program looping on refused calls
    // gets its answers at a bounded rate (a burst, then kRate a second) while
    // its callers wait in the kernel. 0: listeners may be polled now; otherwise
    // the ms until they may.
    int wait_ms();

    const std::vector<Violation>& violations() const { return violations_; }
    bool killed_a_process() const { return killed_; }
    // A kill that could not be aimed at one process: the supervisor ends the jail.
    bool wants_jail_killed() const { return kill_jail_; }
    const std::set<std::string>& learned() const { return learned_; }

private:
    void record(int nr, const uint64_t args[6], int err, bool core, bool killed);

    bool kill_process(int fd, uint64_t id, uint32_t tid);
    bool make_sealed_memfd(int fd, const struct seccomp_notif* req);

    const Spec& spec_;
    std::vector<UniqueFd> listeners_;
    std::vector<Violation> violations_;
    std::set<std::string> learned_;
    bool killed_ = false;
    bool kill_jail_ = false;
    struct seccomp_notif* req_ = nullptr;
    struct seccomp_notif_resp* resp_ = nullptr;
    double tokens_;
    bool throttled_ = false;
    uint64_t refilled_ns_ = 0;
};

// "name(arg, arg, ...)" with the arguments decoded where stockade knows them.
std::string format_call(const std::string& name, const uint64_t args[6]);

// "refused 3 syscalls: socket(AF_NETLINK, ...) x2, ptrace(...)" ("" if none).
std::string summarize(const std::vector<Violation>& v);

}  // namespace stockade::supervise
