#include "plan/fingerprint.hpp"

#include <cstdio>

#include "profile/limits.hpp"

namespace stockade::plan {
namespace {

class Encoder {
public:
    Encoder& put(const char* name, const std::string& v) {
        out_ += name;
        out_ += '=' + std::to_string(v.size()) + ':' + v + ';';
        return *this;
    }
    Encoder& put(const char* name, uint64_t v) { return put(name, std::to_string(v)); }
    Encoder& put(const char* name, double v) {
        char b[32];
        std::snprintf(b, sizeof b, "%.6g", v);
        return put(name, std::string(b));
    }
    Encoder& put(const char* name, bool v) { return put(name, std::string(v ? "1" : "0")); }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

}  // namespace

std::string canonical(const Plan& p) {
    Encoder e;
    e.put("v", std::string("2"));
    for (const auto& m : p.mounts) {
        e.put("mount.kind", static_cast<uint64_t>(m.kind));
        // The script's host path is what was run, not what was allowed.
        e.put("mount.src", m.kind == MountOp::Kind::Script ? std::string("<script>") : m.src);
        e.put("mount.dst", m.dst).put("mount.writable", m.writable).put("mount.noexec", m.noexec);
        e.put("mount.size", m.size).put("mount.mode", static_cast<uint64_t>(m.mode)).put("mount.content", m.content);
    }
    // Variable names (values may be the caller's secrets), and PATH in full.
    for (const auto& v : p.envp) e.put("env", v.rfind("PATH=", 0) == 0 ? v : v.substr(0, v.find('=')));
    for (const auto& x : p.exec_allow) e.put("exec_allow", x);
    for (const auto& x : p.exec_rules) e.put("exec_rule", x);
    e.put("cwd", p.cwd).put("hostname", p.hostname);
    e.put("uid", static_cast<uint64_t>(p.uid)).put("gid", static_cast<uint64_t>(p.gid));
    e.put("host_uid", static_cast<uint64_t>(p.host_uid)).put("host_gid", static_cast<uint64_t>(p.host_gid));
    e.put("clear_host_groups", p.clear_host_groups).put("loopback_up", p.loopback_up).put("net_ns", p.net_ns);
    e.put("proxy_port", static_cast<uint64_t>(p.proxy_port));
    for (const auto& r : p.net_rules) e.put("net_rule", r.text);
    for (const auto& [name, ip] : p.net_hosts) e.put("net_host", name + "=" + ip);
    for (const auto& ns : p.net_nameservers) e.put("nameserver", ns);
    e.put("time_ns", p.time_ns).put("proc", static_cast<uint64_t>(p.proc));
    e.put("seccomp", seccomp::canonical(p.seccomp));
    const auto& l = p.limits;
    for (const auto& row : profile::limit_rows()) {
        if (row.f64)
            e.put(row.key, l.*row.f64);
        else
            e.put(row.key, l.*row.u64);  // exact: a double would round large sizes
    }
    e.put("output_kill", l.output_kill);
    e.put("require_cgroup", l.require_cgroup);
    return e.take();
}

std::string fingerprint(const Plan& p) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a(canonical(p))));
    return buf;
}

}  // namespace stockade::plan
