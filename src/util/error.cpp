#include "util/error.hpp"

#include <cstring>

namespace stockade {

void throw_sys_errno(int err, const std::string& op, const std::string& object) {
    std::string msg = op;
    if (!object.empty()) msg.append(" ").append(object);
    msg.append(": ").append(std::strerror(err));
    throw Error(msg, err);
}

void throw_sys(const std::string& op, const std::string& object) { throw_sys_errno(errno, op, object); }

std::string errno_name(int err) {
    const char* n = strerrorname_np(err);
    return n ? n : std::to_string(err);
}

std::optional<int> errno_by_name(const std::string& name) {
    for (int e = 1; e < 134; ++e) {
        const char* n = strerrorname_np(e);
        if (n && name == n) return e;
    }
    return std::nullopt;
}

}  // namespace stockade
