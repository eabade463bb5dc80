// Build-time generator: loads every built-in profile through the same loader
// that stockade runs, and writes each Policy as C++ that builds it again.
// usage: stockade-policygen OUTPUT.cpp
#include <cstdio>
#include <fstream>
#include <iostream>

#include "profile/loader.hpp"
#include "profile/precomputed.hpp"
#include "plan/seccomp_spec.hpp"

using namespace stockade::profile;

namespace {

#if defined(__x86_64__)
// A new field that is not written below would silently take its default in
// the binary; this trips first. Add the field below, then the size here.
static_assert(sizeof(Policy) == 752, "Policy changed: write its new fields in tools/policygen.cpp");
#endif

// Octal escapes, which (unlike \x) cannot run into the next character.
std::string q(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f || c == '?') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\%03o", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string list(const std::vector<std::string>& v) {
    std::string out = "{";
    for (const auto& s : v) out += q(s) + ", ";
    return out + "}";
}

std::string pairs(const std::vector<std::pair<std::string, std::string>>& v) {
    std::string out = "{";
    for (const auto& [a, b] : v) out += "{" + q(a) + ", " + q(b) + "}, ";
    return out + "}";
}

std::string ints(const std::vector<int>& v) {
    std::string out = "{";
    for (int i : v) out += std::to_string(i) + ", ";
    return out + "}";
}

std::string u64(uint64_t v) { return std::to_string(v) + "ull"; }
const char* b(bool v) { return v ? "true" : "false"; }

#if defined(__x86_64__)
static_assert(sizeof(stockade::seccomp::Spec) == 120, "Spec changed: write its new fields in tools/policygen.cpp");
#endif

// What seccomp_spec_for works out from a Policy: it reads only [seccomp] and
// whether the network mode is none, so that is the table's key.
std::string spec_body(const stockade::seccomp::Spec& s) {
    using stockade::seccomp::DefaultAction;
    std::string o;
    auto set = [&](const char* field, const std::string& value) {
        o += "    s." + std::string(field) + " = " + value + ";\n";
    };
    set("enabled", b(s.enabled));
    set("default_action", s.default_action == DefaultAction::Kill  ? "seccomp::DefaultAction::Kill"
                          : s.default_action == DefaultAction::Log ? "seccomp::DefaultAction::Log"
                                                                   : "seccomp::DefaultAction::Errno");
    set("default_errno", std::to_string(s.default_errno));
    set("deny_errno", std::to_string(s.deny_errno));
    set("allow", ints(s.allow));
    set("deny", ints(s.deny));
    set("socket_families", ints(s.socket_families));
    set("unsafe", list(s.unsafe));
    set("learn", b(s.learn));
    return o;
}

std::string body(const Policy& p) {
    std::string o;
    auto set = [&](const char* field, const std::string& value) {
        o += "    p." + std::string(field) + " = " + value + ";\n";
    };
    set("name", q(p.name));
    set("description", q(p.description));
    set("python", q(p.python));
    set("python_args", list(p.python_args));
    set("exec_allow", list(p.exec_allow));
    set("cwd", q(p.cwd));
    set("hostname", q(p.hostname));
    set("uid", std::to_string(p.uid) + "u");
    set("gid", std::to_string(p.gid) + "u");
    set("user_name", q(p.user_name));
    set("home", q(p.home));
    set("root_host_uid", std::to_string(p.root_host_uid) + "u");
    set("root_host_gid", std::to_string(p.root_host_gid) + "u");
    for (const auto& bd : p.binds)
        o += "    p.binds.push_back(Bind{" + q(bd.src) + ", " + q(bd.dst) + ", " + b(bd.writable) + ", " +
             q(bd.origin) + "});\n";
    for (const auto& s : p.symlinks)
        o += "    p.symlinks.push_back(Symlink{" + q(s.path) + ", " + q(s.target) + "});\n";
    set("proc", p.proc == ProcMode::Pid ? "ProcMode::Pid" : "ProcMode::Full");
    set("tmp_size", u64(p.tmp_size));
    set("home_size", u64(p.home_size));
    set("shm_size", u64(p.shm_size));
    set("noexec_writable", b(p.noexec_writable));
    set("env", pairs(p.env));
    set("env_pass", list(p.env_pass));
    const char* nets[] = {"NetMode::None", "NetMode::Loopback", "NetMode::Proxy", "NetMode::Host"};
    set("net", nets[static_cast<int>(p.net)]);
    set("net_allow", list(p.net_allow));
    set("net_hosts", pairs(p.net_hosts));
    set("proxy_port", std::to_string(p.proxy_port));
    set("net_nameservers", list(p.net_nameservers));
    set("unsafe_host_network", b(p.unsafe_host_network));
    set("unsafe_root_host_ids", b(p.unsafe_root_host_ids));
    set("time_ns", b(p.time_ns));
    const char* acts[] = {"SeccompPolicy::Default::Errno", "SeccompPolicy::Default::Kill",
                          "SeccompPolicy::Default::Log"};
    set("seccomp.default_action", acts[static_cast<int>(p.seccomp.default_action)]);
    set("seccomp.default_errno", std::to_string(p.seccomp.default_errno));
    set("seccomp.deny_errno", std::to_string(p.seccomp.deny_errno));
    set("seccomp.allow", list(p.seccomp.allow));
    set("seccomp.deny", list(p.seccomp.deny));
    set("seccomp.socket_families", ints(p.seccomp.socket_families));
    set("seccomp.unsafe_allow", list(p.seccomp.unsafe_allow));
    set("seccomp.disabled", b(p.seccomp.disabled));
    set("seccomp.notes", list(p.seccomp.notes));
    const Limits& l = p.limits;
    set("limits.wall_ms", u64(l.wall_ms));
    set("limits.grace_ms", u64(l.grace_ms));
    set("limits.cpu_ms", u64(l.cpu_ms));
    set("limits.memory", u64(l.memory));
    set("limits.pids", u64(l.pids));
    char cpus[40];
    std::snprintf(cpus, sizeof cpus, "%.17g", l.cpus);
    set("limits.cpus", cpus);
    set("limits.file_size", u64(l.file_size));
    set("limits.open_files", u64(l.open_files));
    set("limits.stack", u64(l.stack));
    set("limits.output", u64(l.output));
    set("limits.output_kill", b(l.output_kill));
    set("limits.require_cgroup", b(l.require_cgroup));
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: stockade-policygen OUTPUT.cpp\n";
        return 2;
    }
    std::string out =
        "// Generated by tools/policygen.cpp at build time: the built-in profiles, loaded\n"
        "// and validated by the same loader that is linked into stockade.\n"
        "#include \"plan/seccomp_spec.hpp\"\n#include \"profile/loader.hpp\"\n#include \"profile/precomputed.hpp\"\n\n"
        "namespace stockade::profile {\nnamespace {\n\nstruct Ready {\n    std::string_view name;\n    Policy policy;\n"
        "    seccomp::Spec spec;\n};\n\n";
    std::string table;
    int i = 0;
    try {
        for (const auto& bi : builtins()) {
            CommandLine cl;
            cl.profile = bi.name;
            const Policy p = load(cl);
            out += "Policy make" + std::to_string(i) + "() {\n    Policy p;\n" + body(p) + "    return p;\n}\n\n";
            out += "seccomp::Spec spec" + std::to_string(i) + "() {\n    seccomp::Spec s;\n" +
                   spec_body(stockade::plan::seccomp_spec_computed(p)) + "    return s;\n}\n\n";
            table +=
                "        {" + q(bi.name) + ", make" + std::to_string(i) + "(), spec" + std::to_string(i) + "()},\n";
            ++i;
        }
    } catch (const ProfileError& e) {
        std::cerr << "stockade-policygen: " << e.diagnostics.front().str() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "stockade-policygen: " << e.what() << "\n";
        return 1;
    }
    // The table ends with an empty name; the specs are keyed by what
    // seccomp_spec_for reads: [seccomp], and whether the network mode is none.
    out +=
        "const Ready* all() {\n    static const Ready ready[] = {\n" + table +
        "        {\"\", Policy{}, seccomp::Spec{}},\n    };\n    return ready;\n}\n\n}  // namespace\n\n"
        "const Policy* precomputed_policy(std::string_view name) {\n"
        "    for (const Ready* r = all(); !r->name.empty(); ++r)\n        if (r->name == name) return &r->policy;\n"
        "    return nullptr;\n}\n\n}  // namespace stockade::profile\n\nnamespace stockade::plan {\n\n"
        "const seccomp::Spec* precomputed_spec(const profile::Policy& p) {\n"
        "    using profile::NetMode;\n"
        "    for (const profile::Ready* r = profile::all(); !r->name.empty(); ++r)\n"
        "        if (r->policy.seccomp == p.seccomp && (r->policy.net == NetMode::None) == (p.net == NetMode::None))\n"
        "            return &r->spec;\n    return nullptr;\n}\n\n}  // namespace stockade::plan\n";
    std::ofstream(argv[1]) << out;
    return 0;
}
