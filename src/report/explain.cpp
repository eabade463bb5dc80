#include "report/explain.hpp"

#include <iomanip>

#include "profile/limits.hpp"
#include "profile/schema.hpp"
#include "profile/units.hpp"
#include "seccomp/catalog.hpp"
#include "seccomp/families.hpp"
#include "seccomp/filter.hpp"
#include "util/error.hpp"

#include <algorithm>

namespace stockade::report {

using plan::MountOp;

namespace {

std::string describe(const MountOp& m) {
    using K = MountOp::Kind;
    std::string flags = m.writable ? "rw" : "ro";
    flags += ",nosuid";
    if (m.kind != K::Device) flags += ",nodev";
    if (m.noexec) flags += ",noexec";
    switch (m.kind) {
        case K::Bind:
            return "bind " + m.src + " (" + flags + ")  [" + m.origin + "]";
        case K::Device:
            return "device " + m.src + " (" + flags + ")";
        case K::Tmpfs:
            return "tmpfs " + profile::format_size(m.size) + " mode " +
                   [&] {
                       char b[8];
                       std::snprintf(b, sizeof b, "%04o", m.mode);
                       return std::string(b);
                   }() +
                   " (" + (m.writable ? flags : std::string("read-only after setup")) + ")";
        case K::Dir:
            return "directory";
        case K::File:
            return "file, synthesized (" + std::to_string(m.content.size()) + " bytes)";
        case K::Script:
            return "copy of " + m.src + " (read-only)";
        case K::Symlink:
            return "symlink -> " + m.src;
        case K::Proc:
            return "proc for the jail's PID namespace";
        case K::Devpts:
            return "devpts, a new instance of the jail's own (its pseudo-terminals only)";
    }
    return {};
}

void explain_limits(std::ostream& out, const profile::Limits& l) {
    // One entry per row of the limits table, in its order.
    std::vector<std::string> items;
    for (const auto& row : profile::limit_rows()) {
        const double v = profile::limit_value(l, row);
        std::string shown;
        if (v <= 0 && row.zero_lifts) {
            shown = "none";
        } else if (row.kind == profile::LimitKind::Duration) {
            const auto ms = static_cast<uint64_t>(v);
            shown = ms % 1000 ? std::to_string(ms) + "ms" : std::to_string(ms / 1000) + "s";
        } else if (row.kind == profile::LimitKind::Size) {
            shown = profile::format_size(static_cast<uint64_t>(v));
        } else {
            char b[32];
            std::snprintf(b, sizeof b, "%g", v);
            shown = b;
        }
        if (std::string(row.key) == "output" && v > 0) shown += l.output_kill ? " (then killed)" : " (then truncated)";
        items.push_back(std::string(row.key) + " " + shown);
    }
    items.emplace_back("core dumps off");
    std::string line = "limits:      ";
    for (size_t i = 0; i < items.size(); ++i) {
        const std::string item = items[i] + (i + 1 < items.size() ? ", " : "");
        if (line.size() + item.size() > 100) {
            out << line.substr(0, line.find_last_not_of(' ') + 1) << "\n";
            line = "             ";
        }
        line += item;
    }
    out << line << "\n";
    out << "             wall_time ends in SIGTERM, then SIGKILL after grace\n";
    out << "             in a cgroup below the caller's own; without one "
        << (l.require_cgroup ? "the run FAILS (require_cgroup)" : "rlimits stand in and the result says so") << "\n";
}

void explain_seccomp(std::ostream& out, const profile::Policy& p, const plan::Plan& plan) {
    const seccomp::Spec& s = plan.seccomp;
    if (!s.enabled) {
        out << "seccomp:     !!! UNSAFE: DISABLED by [unsafe] disable_seccomp: the whole kernel API is open\n";
        return;
    }
    seccomp::Compiled c = seccomp::compile_or_precompiled(s);
    out << "seccomp:     allowlist, " << seccomp::native_arch_name() << " only (any other ABI kills the process), "
        << c.insns.size() << " BPF instructions\n";
    const char* dflt = s.default_action == seccomp::DefaultAction::Kill  ? "the process is killed"
                       : s.default_action == seccomp::DefaultAction::Log ? "ALLOWED and logged (log mode)"
                                                                         : nullptr;
    out << "  anything else: " << (dflt ? dflt : "fails with " + errno_name(s.default_errno))
        << "; every refusal is reported by name\n";
    for (const auto& u : s.unsafe) {
        const seccomp::CoreRule* r = seccomp::find_core(u);
        out << "  !!! UNSAFE: [unsafe] lifts the hard-deny core for " << u << " (" << (r ? r->why : "") << ")\n";
    }
    // Allowed, by group, in the order the groups are defined.
    std::vector<int> left = s.allow;
    auto take = [&](const seccomp::Group& g) {
        std::string names;
        for (const char* n : g.syscalls) {
            int nr = seccomp::resolve(n);
            auto it = std::find(left.begin(), left.end(), nr);
            if (nr < 0 || it == left.end()) continue;
            left.erase(it);
            names += std::string(names.empty() ? "" : " ") + n;
        }
        if (!names.empty()) out << "  allow " << g.name << ": " << names << "\n";
    };
    for (const auto& g : seccomp::groups()) take(g);
    if (!left.empty()) {
        out << "  allow (named):";
        for (int nr : left) out << " " << seccomp::name_of(nr);
        out << "\n";
    }
    if (!s.socket_families.empty()) {
        out << "  socket families:";
        for (int f : s.socket_families)
            if (const seccomp::Family* fam = seccomp::family_by_number(static_cast<uint64_t>(f)))
                out << " " << fam->name;
            else
                out << " " << f;
        out << " (others: EAFNOSUPPORT)\n";
    }
    if (!s.deny.empty()) {
        out << "  deny (" << errno_name(s.deny_errno) << "):";
        for (int nr : s.deny) out << " " << seccomp::name_of(nr);
        out << "\n";
    }
    out << "  hard-deny core (no profile can allow these without [unsafe]):\n";
    for (const auto& r : seccomp::core()) {
        if (std::find(s.unsafe.begin(), s.unsafe.end(), r.syscall) != s.unsafe.end()) continue;
        out << "    " << std::left << std::setw(18) << r.syscall << std::setw(13) << errno_name(r.err) << r.why;
        if (seccomp::resolve(r.syscall) < 0) out << " (not on this architecture)";
        out << "\n";
    }
    for (const auto& n : p.seccomp.notes) out << "  note: " << n << "\n";
}

}  // namespace

void explain(std::ostream& out, const profile::Policy& p, const plan::Plan& plan) {
    out << "profile:     " << p.name << "\n";
    if (!p.description.empty()) out << "             " << p.description << "\n";
    out << "namespaces:  user, mount, pid, " << (plan.net_ns ? "network, " : "") << "ipc, uts, cgroup"
        << (plan.time_ns ? ", time" : "") << "\n";
    out << "user:        uid " << plan.uid << " (" << p.user_name << "), gid " << plan.gid << "; on the host: uid "
        << plan.host_uid << ", gid " << plan.host_gid << " (nothing else is mapped)\n";
    if (p.unsafe_root_host_ids)
        out << "             !!! UNSAFE: [unsafe] root_host_ids: a root-run jail may be any host uid and gid ("
            << p.root_host_uid << ":" << p.root_host_gid << "), privileged groups included\n";
    out << "hostname:    " << plan.hostname << "\n";
    out << "network:     " << profile::to_string(p.net);
    switch (p.net) {
        case profile::NetMode::None:
            out << " (no interface up; AF_UNIX sockets only)\n";
            break;
        case profile::NetMode::Loopback:
            out << " (only lo, up; nothing outside the jail is reachable)\n";
            break;
        case profile::NetMode::Proxy:
            out << " (lo, and an HTTP proxy at 127.0.0.1:" << p.proxy_port
                << " run by stockade outside the jail)\n             allowed:";
            if (p.net_allow.empty()) out << " nothing";
            for (const auto& a : p.net_allow) out << " " << a;
            out << "\n";
            for (const auto& [name, ip] : p.net_hosts) out << "             pinned: " << name << " -> " << ip << "\n";
            break;
        case profile::NetMode::Host:
            out << " !!! UNSAFE: the host's own network, by [unsafe] host_network\n";
            break;
    }
    out << "proc:        " << (plan.proc == profile::ProcMode::Pid ? "pid (only the jail's processes)" : "full")
        << "\n";
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
    explain_limits(out, plan.limits);
    explain_seccomp(out, p, plan);
    out << "environment (nothing else of the caller's):\n";
    for (const auto& e : plan.envp) {
        std::string key = e.substr(0, e.find('='));
        bool passed = false;
        for (const auto& k : p.env_pass) passed |= k == key;
        if (passed)
            out << "  " << key << "=<from the caller>\n";
        else
            out << "  " << e << "\n";
    }
    for (const auto& k : p.env_pass) {
        bool present = false;
        for (const auto& e : plan.envp) present |= e.compare(0, k.size() + 1, k + "=") == 0;
        if (!present) out << "  " << k << " (passed through when the caller has it; unset now)\n";
    }
}

void explain_keys(std::ostream& out) {
    std::string section = "-";
    for (const auto& k : profile::schema_keys()) {
        if (section != k.section) {
            section = k.section;
            out << (section.empty() ? "(top level)" : "[" + section + "]") << "\n";
        }
        out << "  " << std::left << std::setw(18) << k.key << " " << k.doc << "; " << k.type << ", default " << k.def;
        if (k.cli_flag) out << "; flag " << k.cli_flag;
        out << "\n";
    }
}

}  // namespace stockade::report
