#include "report/explain.hpp"

#include <iomanip>

#include "profile/units.hpp"

namespace stockade::report {

using sandbox::MountOp;

namespace {

std::string describe(const MountOp& m) {
    using K = MountOp::Kind;
    std::string flags = m.writable ? "rw" : "ro";
    flags += ",nosuid";
    if (m.kind != K::Device) flags += ",nodev";
    if (m.noexec) flags += ",noexec";
    switch (m.kind) {
        case K::Bind: return "bind " + m.src + " (" + flags + ")  [" + m.origin + "]";
        case K::Device: return "device " + m.src + " (" + flags + ")";
        case K::Tmpfs:
            return "tmpfs " + profile::format_size(m.size) + " mode " + [&] {
                char b[8];
                std::snprintf(b, sizeof b, "%04o", m.mode);
                return std::string(b);
            }() + " (" + (m.writable ? flags : std::string("read-only after setup")) + ")";
        case K::Dir: return "directory";
        case K::File: return "file, synthesized (" + std::to_string(m.content.size()) + " bytes)";
        case K::Script: return "copy of " + m.src + " (read-only)";
        case K::Symlink: return "symlink -> " + m.src;
        case K::Proc: return "proc for the jail's PID namespace";
    }
    return {};
}

}  // namespace

void explain(std::ostream& out, const profile::Policy& p, const sandbox::Plan& plan) {
    out << "profile:     " << p.name << "\n";
    if (!p.description.empty()) out << "             " << p.description << "\n";
    out << "namespaces:  user, mount, pid, network, ipc, uts, cgroup" << (plan.time_ns ? ", time" : "") << "\n";
    out << "user:        uid " << plan.uid << " (" << p.user_name << "), gid " << plan.gid
        << "; on the host: uid " << plan.host_uid << ", gid " << plan.host_gid << " (nothing else is mapped)\n";
    out << "hostname:    " << plan.hostname << "\n";
    out << "network:     " << profile::to_string(p.net)
        << (p.net == profile::NetMode::None ? " (no interface up; nothing connects, not even loopback)"
                                            : " (only lo, up; nothing outside the jail is reachable)")
        << "\n";
    out << "proc:        " << (plan.proc == profile::ProcMode::Pid ? "pid (only the jail's processes)" : "full") << "\n";
    out << "privileges:  every capability dropped (bounding and ambient too), no_new_privs, new session\n";
    out << "program:    ";
    if (plan.argv.empty()) out << " (none)";
    for (const auto& a : plan.argv) out << " " << a;
    out << "\n";
    out << "exec allow: ";
    if (p.exec_allow.empty()) out << " (nothing)";
    for (const auto& a : p.exec_allow) out << " " << a;
    out << "\ncwd:         " << plan.cwd << "\n";
    out << "filesystem (in mount order; the root is a tmpfs, read-only after setup):\n";
    size_t w = 0;
    for (const auto& m : plan.mounts) w = std::max(w, m.dst.size());
    for (const auto& m : plan.mounts)
        out << "  " << std::left << std::setw(static_cast<int>(w)) << m.dst << "  " << describe(m) << "\n";
    out << "environment (nothing else of the caller's):\n";
    for (const auto& e : plan.envp) {
        std::string key = e.substr(0, e.find('='));
        bool passed = false;
        for (const auto& k : p.env_pass) passed |= k == key;
        if (passed) out << "  " << key << "=<from the caller>\n";
        else out << "  " << e << "\n";
    }
    for (const auto& k : p.env_pass) {
        bool present = false;
        for (const auto& e : plan.envp) present |= e.compare(0, k.size() + 1, k + "=") == 0;
        if (!present) out << "  " << k << " (passed through when the caller has it; unset now)\n";
    }
}

}  // namespace stockade::report
