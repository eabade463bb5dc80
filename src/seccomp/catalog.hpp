// What stockade knows about syscalls: names on this architecture, the named
// groups profiles use (@python, @file-io, ...), and the hard-deny core that no
// profile can allow without [unsafe].
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace stockade::seccomp {

struct Group {
    const char* name;  // "@file-io"
    const char* description;
    std::vector<const char*> syscalls;
};

const std::vector<Group>& groups();
const Group* find_group(const std::string& name);

// The core: refused in every profile. Arg-dependent entries (clone with a
// namespace flag, socket families, ioctl requests, personality) are refused
// only in those forms; the rest of the call stays under the profile's rules.
struct CoreRule {
    const char* syscall;
    int err;          // errno returned
    const char* why;  // shown by explain
};
const std::vector<CoreRule>& core();
const CoreRule* find_core(const std::string& syscall);
// True for core syscalls refused only in some argument forms (clone, socket, ioctl, ...).
bool core_is_conditional(const std::string& syscall);

// The one place the hard-deny core is decided: the core's rule for this
// syscall, unless [unsafe] lifted it (nullptr: the core has nothing to say).
const CoreRule* core_rule(const std::string& syscall, const std::vector<std::string>& unsafe);
// Refused in every form whatever the profile allows (the core, not lifted, unconditional).
inline bool core_refuses_always(const std::string& syscall, const std::vector<std::string>& unsafe) {
    return core_rule(syscall, unsafe) && !core_is_conditional(syscall);
}

// Native syscall number, or -1 if this architecture has no such syscall.
int resolve(const std::string& name);
// Name of a native syscall number ("" if unknown).
std::string name_of(int nr);
// True if the name is a syscall on some architecture libseccomp knows.
bool known_elsewhere(const std::string& name);
// Every native syscall name, for suggestions.
const std::vector<std::string>& native_names();
const char* native_arch_name();

}  // namespace stockade::seccomp
