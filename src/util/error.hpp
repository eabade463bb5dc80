// One error type for the whole program: what was being done, to what, and why.
// It travels up to main (or, in the jail's child, over the report pipe) and is
// printed as a single line: "mount /usr -> /usr: Permission denied".
#pragma once
#include <cerrno>
#include <stdexcept>
#include <optional>
#include <string>

namespace stockade {

class Error : public std::runtime_error {
public:
    explicit Error(std::string message, int err = 0) : std::runtime_error(std::move(message)), errno_(err) {}
    int code() const noexcept { return errno_; }

private:
    int errno_;
};

// "OP OBJECT: strerror(errno)"; captures errno at the call site.
[[noreturn]] void throw_sys(const std::string& op, const std::string& object = {});
[[noreturn]] void throw_sys_errno(int err, const std::string& op, const std::string& object = {});

// Runs a syscall-returning-int and throws with context when it fails.
template <typename T>
inline T check(T rc, const std::string& op, const std::string& object = {}) {
    if (rc < 0) throw_sys(op, object);
    return rc;
}

std::string errno_name(int err);                            // "EPERM"
std::optional<int> errno_by_name(const std::string& name);  // "EPERM" -> 1

}  // namespace stockade
