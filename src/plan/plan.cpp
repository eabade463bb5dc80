#include "plan/plan.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>

#include "plan/seccomp_spec.hpp"
#include "util/error.hpp"

namespace stockade::plan {

using profile::Policy;

size_t path_depth(const std::string& p) {
    return static_cast<size_t>(std::count(p.begin(), p.end(), '/')) - (p == "/" ? 1 : 0);
}

namespace {

bool under(const std::string& path, const std::string& dir) {
    return path == dir ||
           (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

std::string basename_of(const std::string& p) {
    size_t s = p.rfind('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}

std::string passwd_file(const Policy& p, uint32_t uid, uint32_t gid) {
    return "root:x:0:0:root:/root:/usr/sbin/nologin\n" + p.user_name + ":x:" + std::to_string(uid) + ":" +
           std::to_string(gid) + ":stockade sandbox:" + p.home + ":/bin/sh\n" +
           "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
}

std::string group_file(const Policy& p, uint32_t gid) {
    return "root:x:0:\n" + p.user_name + ":x:" + std::to_string(gid) + ":\nnogroup:x:65534:\n";
}

std::string hosts_file(const Policy& p) {
    return "127.0.0.1\tlocalhost " + p.hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
}

void add_dev(std::vector<MountOp>& out, const Policy& p) {
    out.push_back({MountOp::Kind::Tmpfs, "", "/dev", false, true, 1 << 20, 0755, "", "built-in /dev"});
    for (const char* d : {"null", "zero", "full", "random", "urandom"}) {
        out.push_back({MountOp::Kind::Device, std::string("/dev/") + d, std::string("/dev/") + d, true, true, 0, 0666,
                       "", "built-in /dev"});
    }
    // A devpts of the jail's own: pty.openpty() works, and a caller's terminal
    // is met by a pseudo-terminal from here (the caller's own never enters).
    out.push_back({MountOp::Kind::Devpts, "", "/dev/pts", true, true, 0, 0755, "", "built-in /dev"});
    out.push_back({MountOp::Kind::Symlink, "pts/ptmx", "/dev/ptmx", false, false, 0, 0, "", "built-in /dev"});
    out.push_back(
        {MountOp::Kind::Tmpfs, "", "/dev/shm", true, p.noexec_writable, p.shm_size, 01777, "", "filesystem.shm_size"});
    const std::pair<const char*, const char*> links[] = {{"/dev/fd", "/proc/self/fd"},
                                                         {"/dev/stdin", "/proc/self/fd/0"},
                                                         {"/dev/stdout", "/proc/self/fd/1"},
                                                         {"/dev/stderr", "/proc/self/fd/2"}};
    for (auto& [path, target] : links)
        out.push_back({MountOp::Kind::Symlink, target, path, false, false, 0, 0, "", "built-in /dev"});
}

}  // namespace

Plan make(const Policy& p, const Invocation& inv, const HostFacts& host) {
    Plan out;
    out.uid = p.uid;
    out.gid = p.gid;
    const bool root = host.euid == 0;
    out.host_uid = root ? p.root_host_uid : host.euid;
    out.host_gid = root ? p.root_host_gid : host.egid;
    out.clear_host_groups = root;
    out.hostname = p.hostname;
    out.cwd = p.cwd;
    out.loopback_up = p.net == profile::NetMode::Loopback || p.net == profile::NetMode::Proxy;
    out.net_ns = p.net != profile::NetMode::Host;
    if (p.net == profile::NetMode::Proxy) {
        out.proxy_port = p.proxy_port;
        for (const auto& text : p.net_allow) {
            net::Rule r;
            // Validated by the profile loader already; a failure here is a bug.
            if (std::string m = net::parse_rule(text, r); !m.empty()) throw Error("network.allow: " + m);
            out.net_rules.push_back(std::move(r));
        }
        out.net_hosts = p.net_hosts;
        out.net_nameservers = p.net_nameservers;
    }
    out.time_ns = p.time_ns;
    out.proc = p.proc;
    out.seccomp = seccomp_spec_for(p);
    out.seccomp.learn = inv.learn;
    out.timings = inv.timings;
    out.limits = p.limits;

    // Filesystem: ops that occupy a path in the tree are ordered parents-first, so
    // "--rw /data:/home/sandbox/data" lands inside HOME, not under it.
    std::vector<MountOp> tree;
    for (const auto& s : p.symlinks)
        tree.push_back({MountOp::Kind::Symlink, s.target, s.path, false, false, 0, 0, "", "filesystem.symlinks"});
    tree.push_back(
        {MountOp::Kind::Tmpfs, "", "/tmp", true, p.noexec_writable, p.tmp_size, 01777, "", "filesystem.tmp_size"});
    tree.push_back(
        {MountOp::Kind::Tmpfs, "", p.home, true, p.noexec_writable, p.home_size, 0700, "", "filesystem.home_size"});
    if (inv.writable_work)
        tree.push_back({MountOp::Kind::Tmpfs, "", "/work", true, p.noexec_writable, p.tmp_size, 0755, "",
                        "serve: the task's /work"});
    else
        tree.push_back({MountOp::Kind::Dir, "", "/work", false, false, 0, 0755, "", "built-in"});
    if (inv.mode == Invocation::Mode::Script) {
        std::string name = basename_of(inv.script);
        if (name.empty() || name == "." || name == "..")
            throw Error("script " + inv.script + ": expected a path to a file");
        out.script_host = inv.script;
        tree.push_back({MountOp::Kind::Script, inv.script, "/work/" + name, false, false, 0, 0444, "", inv.script});
    }
    for (const auto& b : p.binds) {
        MountOp op{MountOp::Kind::Bind, b.src, b.dst, b.writable, b.writable && p.noexec_writable, 0, 0, "", b.origin};
        tree.push_back(std::move(op));
    }
    auto covered = [&](const std::string& path) {
        return std::any_of(p.binds.begin(), p.binds.end(), [&](auto& b) { return under(path, b.dst); });
    };
    const std::pair<std::string, std::string> etc[] = {
        {"/etc/passwd", passwd_file(p, out.uid, out.gid)},
        {"/etc/group", group_file(p, out.gid)},
        {"/etc/hosts", hosts_file(p)},
        {"/etc/hostname", p.hostname + "\n"},
    };
    for (const auto& [path, content] : etc)
        if (!covered(path)) tree.push_back({MountOp::Kind::File, "", path, false, false, 0, 0644, content, "built-in"});
    const bool reaches_out = p.net == profile::NetMode::Proxy || p.net == profile::NetMode::Host;
    for (const auto& path : host.present) {
        if (path.rfind("/etc/ssl/", 0) == 0 && !reaches_out) continue;
        if (!covered(path))
            tree.push_back({MountOp::Kind::Bind, path, path, false, false, 0, 0, "", "built-in (" + path + ")"});
    }
    std::stable_sort(tree.begin(), tree.end(),
                     [](const MountOp& a, const MountOp& b) { return path_depth(a.dst) < path_depth(b.dst); });
    out.mounts = std::move(tree);
    add_dev(out.mounts, p);
    bound_scratch(out.mounts, p.limits.memory);
    out.terminal = host.stdio_ttys;
    out.terminal_raw = inv.terminal_raw;
    out.mounts.push_back({MountOp::Kind::Proc, "", "/proc", false, true, 0, 0555, "", "filesystem.proc"});

    // Environment: built-in defaults, then the profile and --env, then passed-through values.
    std::vector<std::pair<std::string, std::string>> env = {
        {"HOME", p.home}, {"USER", p.user_name}, {"LOGNAME", p.user_name}, {"PATH", "/usr/bin:/bin"}};
    auto put = [&](const std::string& k, const std::string& v) {
        auto it = std::find_if(env.begin(), env.end(), [&](auto& e) { return e.first == k; });
        if (it != env.end())
            it->second = v;
        else
            env.emplace_back(k, v);
    };
    if (p.net == profile::NetMode::Proxy) {
        // urllib, pip, requests and httpx all read these; nothing in the jail changes.
        std::string url = "http://127.0.0.1:" + std::to_string(p.proxy_port);
        for (const char* k : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}) put(k, url);
        put("NO_PROXY", "localhost,127.0.0.1,::1");
        put("no_proxy", "localhost,127.0.0.1,::1");
    }
    for (const auto& [k, v] : p.env) put(k, v);
    for (const auto& k : p.env_pass) {
        auto it = host.env.find(k);
        if (it != host.env.end()) put(k, it->second);
    }
    for (const auto& [k, v] : env) {
        out.envp.push_back(k + "=" + v);
        if (k == "PATH") out.path_var = v;
    }

    out.template_program = inv.template_program;
    switch (inv.mode) {
        case Invocation::Mode::Script:
            out.argv.push_back(p.python);
            out.argv.insert(out.argv.end(), p.python_args.begin(), p.python_args.end());
            out.argv.push_back("/work/" + basename_of(inv.script));
            break;
        case Invocation::Mode::Code:
            out.argv.push_back(p.python);
            out.argv.insert(out.argv.end(), p.python_args.begin(), p.python_args.end());
            if (!inv.code_file.empty()) {
                out.mounts.push_back(
                    {MountOp::Kind::File, "", inv.code_file, false, false, 0, 0444, inv.code, "built-in"});
                for (const auto& [path, content] : inv.code_extras)
                    out.mounts.push_back({MountOp::Kind::File, "", path, false, false, 0, 0444, content, "built-in"});
                out.argv.push_back(inv.code_run.empty() ? inv.code_file : inv.code_run);
                break;
            }
            out.argv.push_back("-c");
            out.argv.push_back(inv.code);
            break;
        case Invocation::Mode::Repl:
            if (!(host.stdio_ttys & 1u))
                throw Error("run: expected SCRIPT.py or -c CODE (or, on a terminal, nothing: an interactive python)");
            out.argv.push_back(p.python);
            out.argv.insert(out.argv.end(), p.python_args.begin(), p.python_args.end());
            break;
        case Invocation::Mode::Exec:
            if (inv.args.empty() || inv.args[0].empty()) throw Error("exec: expected a program to run after --");
            out.exec_allow = p.exec_allow;
            if (out.exec_allow.empty())
                throw Error("exec: the profile '" + p.name + "' allows no programs (run.exec_allow is empty)");
            break;
    }
    out.argv.insert(out.argv.end(), inv.args.begin(), inv.args.end());
    out.exec_rules = p.exec_allow;
    if (inv.mode != Invocation::Mode::Exec) out.exec_rules.push_back(p.python);
    return out;
}

void bound_scratch(std::vector<MountOp>& mounts, uint64_t memory) {
    if (!memory) return;
    uint64_t total = 0;
    for (const auto& m : mounts)
        if (m.kind == MountOp::Kind::Tmpfs && m.writable) total += m.size;
    if (total <= memory) return;
    // Scaled down together, each keeping its share, to whole pages; never
    // below one page (a tmpfs of size 0 would have no limit at all).
    for (auto& m : mounts)
        if (m.kind == MountOp::Kind::Tmpfs && m.writable) {
            uint64_t s = static_cast<uint64_t>(static_cast<long double>(m.size) * memory / total);
            m.size = std::max<uint64_t>(4096, s / 4096 * 4096);
        }
}

void check_sources(const Plan& p) {
    for (const auto& m : p.mounts) {
        if (m.kind != MountOp::Kind::Bind && m.kind != MountOp::Kind::Device) continue;
        struct stat st;
        if (::lstat(m.src.c_str(), &st) < 0) {
            int e = errno;
            throw_sys_errno(e, m.origin + ": bind source", m.src);
        }
        if (S_ISLNK(st.st_mode))
            throw Error(m.origin + ": bind source " + m.src +
                        " is a symlink; name the real path (stockade never follows links for mounts)");
        bool ok = m.kind == MountOp::Kind::Device ? S_ISCHR(st.st_mode) : (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode));
        if (!ok) throw Error(m.origin + ": bind source " + m.src + " is not a directory or regular file");
    }
}

}  // namespace stockade::plan
