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
#include "util/fd.hpp"

namespace stockade::seccomp {

struct Violation {
    int nr = 0;
    std::string name;
    std::string call;  // "socket(AF_NETLINK, SOCK_RAW, 0)"
    int err = 0;       // what the caller got
    bool core = false;
    bool killed = false;
    unsigned count = 0;
};

class Notifier {
public:
    explicit Notifier(const Spec& spec) : spec_(spec) {}
    void add_listener(int fd) { listeners_.emplace_back(fd); }
    void close_listener(int fd) {
        for (auto& l : listeners_)
            if (l.get() == fd) l.reset();
    }
    const std::vector<UniqueFd>& listeners() const { return listeners_; }

    // Answers one pending notification on fd. Returns false when the listener
    // is finished (the filter's processes are all gone).
    bool handle(int fd);

    const std::vector<Violation>& violations() const { return violations_; }
    bool killed_a_process() const { return killed_; }
    const std::set<std::string>& learned() const { return learned_; }

private:
    void record(int nr, const uint64_t args[6], int err, bool core, bool killed);

    const Spec& spec_;
    std::vector<UniqueFd> listeners_;
    std::vector<Violation> violations_;
    std::set<std::string> learned_;
    bool killed_ = false;
};

// "name(arg, arg, ...)" with the arguments decoded where stockade knows them.
std::string format_call(const std::string& name, const uint64_t args[6]);

// "refused 3 syscalls: socket(AF_NETLINK, ...) x2, ptrace(...)" ("" if none).
std::string summarize(const std::vector<Violation>& v);

}  // namespace stockade::seccomp
