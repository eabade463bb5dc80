#include "supervise/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sstream>
#include <vector>

#include "profile/limits.hpp"
#include "supervise/systemd_scope.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/clock.hpp"

namespace stockade::supervise {
namespace {

std::string read_file(const std::string& path) { return read_small_file(path, 16 << 20); }

bool write_file(const std::string& path, const std::string& text, bool must = true) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    bool ok = fd && ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (!ok && must) throw_sys("write " + path, "(" + text + ")");
    return ok;
}

// "key value" lines (memory.events, pids.events, cpu.stat, memory.oom_control).
int64_t keyed(const std::string& text, const std::string& key) {
    std::istringstream in(text);
    std::string k;
    int64_t v;
    while (in >> k >> v)
        if (k == key) return v;
    return -1;
}

int64_t number(const std::string& path) {
    std::string t = read_file(path);
    if (t.empty() || t[0] < '0' || t[0] > '9') return -1;
    return std::stoll(t);
}

bool has_word(const std::string& text, const std::string& w) {
    std::istringstream in(text);
    std::string x;
    while (in >> x)
        if (x == w) return true;
    return false;
}

std::string write_text(const profile::CgroupWrite& w, double v) {
    if (w.fixed) return w.fixed;
    if (w.format) return w.format(v);
    return std::to_string(static_cast<uint64_t>(v));
}

std::string unique_name(const char* kind) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "stockade-%s%d-%llx", kind, ::getpid(),
                  static_cast<unsigned long long>(monotonic_ns() & 0xffffffffffull));
    return buf;
}

// stockade-[sup-]PID-...: stale when PID is gone (a stockade that was killed).
std::vector<std::string> stale_in(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.rfind("stockade-", 0) != 0) continue;
        std::string rest = n.substr(9);
        if (rest.rfind("sup-", 0) == 0) rest = rest.substr(4);
        pid_t pid = static_cast<pid_t>(std::atoi(rest.c_str()));
        if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        out.push_back(dir + "/" + n);
    }
    ::closedir(d);
    return out;
}

void remove_stale(const std::string& dir) {
    for (const auto& c : stale_in(dir)) ::rmdir(c.c_str());
}

struct Mount {
    std::string point, root, type, options;
};

std::vector<Mount> cgroup_mounts() {
    std::vector<Mount> out;
    std::istringstream in(read_file("/proc/self/mountinfo"));
    for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string id, parent, dev, root, point, opts, tok;
        f >> id >> parent >> dev >> root >> point >> opts;
        while (f >> tok && tok != "-") {}
        std::string type, src, super;
        f >> type >> src >> super;
        if (type == "cgroup" || type == "cgroup2") out.push_back({point, root, type, super});
    }
    return out;
}

// The caller's cgroup path for a v1 controller, or for v2 ("").
std::string own_path(const std::string& controller) {
    std::istringstream in(read_file("/proc/self/cgroup"));
    for (std::string line; std::getline(in, line);) {
        size_t a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::string id = line.substr(0, a), ctls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        if (controller.empty()) {
            if (id == "0" && ctls.empty()) return path;
            continue;
        }
        std::stringstream cs(ctls);
        for (std::string c; std::getline(cs, c, ',');)
            if (c == controller) return path;
    }
    return {};
}

std::string join(const Mount& m, const std::string& path) {
    // The mount may show a subtree (root != "/"): paths are relative to it.
    std::string rel = path;
    if (m.root != "/" && rel.rfind(m.root, 0) == 0) rel = rel.substr(m.root.size());
    return m.point + (rel == "/" ? "" : rel);
}

// ---- v2 ---------------------------------------------------------------------

// stockade's own step into a leaf below its cgroup, which v2's rule of no
// processes in inner cgroups asks for before controllers can be enabled. One
// per process, shared by every jail it runs (serve runs many), undone with
// the last: controllers off again, stockade back where it was, leaf gone.
struct SelfLeaf {
    std::string base, leaf, enabled;
    ~SelfLeaf() {
        std::string off = enabled;
        for (auto& ch : off)
            if (ch == '+') ch = '-';
        write_file(base + "/cgroup.subtree_control", off, false);
        write_file(base + "/cgroup.procs", std::to_string(::getpid()), false);
        ::rmdir(leaf.c_str());
    }
};
std::weak_ptr<SelfLeaf> g_self_leaf;

class CgroupV2 : public Cgroup {
public:
    CgroupV2(std::string base, const profile::Limits& l, bool sweep) : base_(std::move(base)) {
        if (sweep) remove_stale(base_);
        const bool root = read_file("/proc/self/cgroup").find("0::/\n") != std::string::npos;
        leaf_ = g_self_leaf.lock();
        if (leaf_ && leaf_->base != base_) leaf_.reset();
        std::string wanted;
        for (const char* c : {"memory", "pids", "cpu"})
            if (!has_word(read_file(base_ + "/cgroup.subtree_control"), c)) wanted += std::string("+") + c + " ";
        if (!wanted.empty() && !leaf_) {
            // No internal processes: controllers can be enabled only in a cgroup
            // with nobody in it (or the root). If stockade is alone, it steps
            // into a leaf of its own first; it never moves anyone else.
            if (!root) {
                std::istringstream procs(read_file(base_ + "/cgroup.procs"));
                for (std::string p; procs >> p;)
                    if (std::atoi(p.c_str()) != ::getpid())
                        throw Error("cgroup " + base_ +
                                    " holds other processes, so stockade cannot enable controllers "
                                    "below it; run it in a delegated cgroup of its own: "
                                    "systemd-run --user --scope -p Delegate=yes stockade ...");
                auto leaf = std::make_shared<SelfLeaf>();
                leaf->base = base_;
                leaf->leaf = base_ + "/" + unique_name("sup-");
                if (::mkdir(leaf->leaf.c_str(), 0755) < 0) throw_sys("mkdir", leaf->leaf);
                write_file(leaf->leaf + "/cgroup.procs", std::to_string(::getpid()));
                leaf_ = leaf;
                g_self_leaf = leaf;
            }
            write_file(base_ + "/cgroup.subtree_control", wanted);
            if (leaf_) leaf_->enabled = wanted;
        }
        dir_ = base_ + "/" + unique_name("");
        if (::mkdir(dir_.c_str(), 0755) < 0) throw_sys("mkdir", dir_);
        made_ = true;
        for (const auto& row : profile::limit_rows())
            if (const double v = profile::limit_value(l, row); v > 0)
                for (const auto& w : row.v2) write_file(dir_ + "/" + w.file, write_text(w, v), w.must);
        fd_ = UniqueFd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd_) throw_sys("open", dir_);
    }
    ~CgroupV2() override {
        fd_.reset();
        if (made_) {
            kill();
            for (int i = 0; i < 100 && ::rmdir(dir_.c_str()) < 0 && errno == EBUSY; ++i) ::usleep(1000);
        }
        // leaf_, if ours alone, is undone after this body.
    }
    const char* version() const override { return "v2"; }
    int clone_into_fd() const override { return fd_.get(); }
    // A process we did not clone (serve's template forks them).
    void attach(pid_t pid) override { write_file(dir_ + "/cgroup.procs", std::to_string(pid)); }
    double cpu_ms() override {
        int64_t us = keyed(read_file(dir_ + "/cpu.stat"), "usage_usec");
        return us < 0 ? -1 : static_cast<double>(us) / 1000.0;
    }
    CgroupStats stats() override {
        CgroupStats s;
        s.memory_peak = number(dir_ + "/memory.peak");  // kernel 5.19+
        s.oom_kills = keyed(read_file(dir_ + "/memory.events"), "oom_kill");
        s.pids_peak = number(dir_ + "/pids.peak");  // kernel 6.?+; -1 otherwise
        s.pids_refused = keyed(read_file(dir_ + "/pids.events"), "max");
        s.cpu_ms = cpu_ms();
        std::string stat = read_file(dir_ + "/cpu.stat");
        int64_t u = keyed(stat, "user_usec"), y = keyed(stat, "system_usec");
        if (u >= 0 && y >= 0) {
            s.user_ms = static_cast<double>(u) / 1000.0;
            s.sys_ms = static_cast<double>(y) / 1000.0;
        }
        return s;
    }
    void set_cpu_weight(unsigned weight) override { write_file(dir_ + "/cpu.weight", std::to_string(weight), false); }
    void kill() override {
        if (!write_file(dir_ + "/cgroup.kill", "1", false)) {
            std::istringstream procs(read_file(dir_ + "/cgroup.procs"));
            for (std::string p; procs >> p;) ::kill(std::atoi(p.c_str()), SIGKILL);
        }
    }

private:
    std::string base_, dir_;
    std::shared_ptr<SelfLeaf> leaf_;
    UniqueFd fd_;
    bool made_ = false;
};

// ---- v1 ---------------------------------------------------------------------

class CgroupV1 : public Cgroup {
public:
    CgroupV1(const std::vector<std::pair<std::string, std::string>>& bases, const profile::Limits& l, bool sweep) {
        const std::string name = unique_name("");
        for (const auto& [ctl, base] : bases) {
            if (sweep) remove_stale(base);
            std::string dir = base + "/" + name;
            if (::mkdir(dir.c_str(), 0755) < 0) throw_sys("mkdir", dir);
            dirs_.emplace_back(ctl, dir);
        }
        // A hierarchy that is not mounted (cpu, on some hosts) is skipped:
        // memory and pids were required before this was made.
        for (const auto& row : profile::limit_rows())
            if (const double v = profile::limit_value(l, row); v > 0)
                for (const auto& w : row.v1)
                    if (!dir(w.controller).empty())
                        write_file(dir(w.controller) + "/" + w.file, write_text(w, v), w.must);
    }
    ~CgroupV1() override {
        kill();
        for (const auto& [ctl, d] : dirs_)
            for (int i = 0; i < 100 && ::rmdir(d.c_str()) < 0 && errno == EBUSY; ++i) ::usleep(1000);
    }
    const char* version() const override { return "v1"; }
    void attach(pid_t pid) override {
        for (const auto& [ctl, d] : dirs_) write_file(d + "/cgroup.procs", std::to_string(pid));
    }
    double cpu_ms() override {
        std::string d = dir("cpuacct");
        int64_t ns = d.empty() ? -1 : number(d + "/cpuacct.usage");
        return ns < 0 ? -1 : static_cast<double>(ns) / 1e6;
    }
    CgroupStats stats() override {
        CgroupStats s;
        s.memory_peak = number(dir("memory") + "/memory.max_usage_in_bytes");
        s.oom_kills = keyed(read_file(dir("memory") + "/memory.oom_control"), "oom_kill");
        s.pids_refused = keyed(read_file(dir("pids") + "/pids.events"), "max");
        s.cpu_ms = cpu_ms();
        if (!dir("cpuacct").empty()) {
            std::string stat = read_file(dir("cpuacct") + "/cpuacct.stat");  // USER_HZ ticks
            int64_t u = keyed(stat, "user"), y = keyed(stat, "system");
            double tick = 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
            if (u >= 0 && y >= 0) {
                s.user_ms = static_cast<double>(u) * tick;
                s.sys_ms = static_cast<double>(y) * tick;
            }
        }
        return s;
    }
    void set_cpu_weight(unsigned weight) override {
        // cpu.shares is 1024 where cpu.weight is 100.
        if (!dir("cpu").empty()) write_file(dir("cpu") + "/cpu.shares", std::to_string(weight * 1024 / 100), false);
    }
    void kill() override {
        for (int round = 0; round < 3; ++round) {
            std::istringstream procs(read_file(dir("pids") + "/cgroup.procs"));
            bool any = false;
            for (std::string p; procs >> p;) {
                ::kill(std::atoi(p.c_str()), SIGKILL);
                any = true;
            }
            if (!any) break;
            ::usleep(1000);
        }
    }

private:
    std::string dir(const std::string& ctl) const {
        for (const auto& [c, d] : dirs_)
            if (c == ctl) return d;
        return {};
    }
    std::vector<std::pair<std::string, std::string>> dirs_;
};

bool writable_dir(const std::string& d) { return ::access(d.c_str(), W_OK | X_OK) == 0; }

std::unique_ptr<Cgroup> find_cgroup(const profile::Limits& l, std::string& why_not, bool sweep);

}  // namespace

std::unique_ptr<Cgroup> create_cgroup(const profile::Limits& l, std::string& why_not, bool sweep) {
    std::unique_ptr<Cgroup> cg = find_cgroup(l, why_not, sweep);
    // Unprivileged with nothing writable: a delegated scope from the user's
    // systemd, then the same search again, from inside it.
    if (!cg && ::geteuid() != 0) {
        std::string why_scope;
        if (enter_delegated_scope(why_scope))
            cg = find_cgroup(l, why_not, sweep);
        else
            why_not += "; " + why_scope;
    }
    return cg;
}

namespace {

std::unique_ptr<Cgroup> find_cgroup(const profile::Limits& l, std::string& why_not, bool sweep) {
    auto mounts = cgroup_mounts();
    // v2, where it has the controllers (on hybrid hosts its tree has none).
    for (const auto& m : mounts) {
        if (m.type != "cgroup2") continue;
        std::string base = join(m, own_path(""));
        // Our own cgroup is the leaf we stepped into for the jails still
        // alive: theirs is the one above it, not a new leaf below it.
        if (auto leaf = g_self_leaf.lock(); leaf && leaf->leaf == base) base = leaf->base;
        std::string have = read_file(base + "/cgroup.controllers");
        if (!has_word(have, "memory") || !has_word(have, "pids")) continue;
        if (!writable_dir(base)) {
            why_not = "cgroup " + base +
                      " is not writable (not delegated to this user); run inside one that is: "
                      "systemd-run --user --scope -p Delegate=yes stockade ...";
            return nullptr;
        }
        try {
            return std::make_unique<CgroupV2>(base, l, sweep);
        } catch (const Error& e) {
            why_not = e.what();
            return nullptr;
        }
    }
    // v1: memory and pids are required; cpu and cpuacct are used when present.
    std::vector<std::pair<std::string, std::string>> bases;
    for (const char* ctl : {"memory", "pids", "cpu", "cpuacct"}) {
        for (const auto& m : mounts) {
            if (m.type != "cgroup") continue;
            std::stringstream opts(m.options);
            bool found = false;
            for (std::string o; std::getline(opts, o, ',');) found |= o == ctl;
            if (!found) continue;
            std::string base = join(m, own_path(ctl));
            if (writable_dir(base)) bases.emplace_back(ctl, base);
            break;
        }
    }
    bool mem = false, pids = false;
    for (const auto& [c, b] : bases) {
        mem |= c == "memory";
        pids |= c == "pids";
    }
    if (!mem || !pids) {
        why_not =
            "no writable cgroup with the memory and pids controllers below this process's own "
            "(as an unprivileged user, run in a delegated one: systemd-run --user --scope -p Delegate=yes stockade ...)";
        return nullptr;
    }
    try {
        return std::make_unique<CgroupV1>(bases, l, sweep);
    } catch (const Error& e) {
        why_not = e.what();
        return nullptr;
    }
}

}  // namespace

std::vector<std::string> stale_cgroups(bool remove) {
    std::vector<std::string> out;
    for (const auto& m : cgroup_mounts()) {
        std::vector<std::string> ctls;
        if (m.type == "cgroup2") {
            ctls.push_back("");
        } else {
            std::stringstream opts(m.options);
            for (std::string o; std::getline(opts, o, ',');)
                if (o == "memory" || o == "pids" || o == "cpu" || o == "cpuacct") ctls.push_back(o);
        }
        for (const auto& ctl : ctls) {
            std::string base = join(m, own_path(ctl));
            for (const auto& c : stale_in(base)) {
                if (std::find(out.begin(), out.end(), c) != out.end()) continue;
                if (remove) ::rmdir(c.c_str());
                out.push_back(c);
            }
        }
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> degraded_without_cgroup(const profile::Limits& l,
                                                                         const std::string& why) {
    std::vector<std::pair<std::string, std::string>> d;
    d.emplace_back("cgroup", why);
    for (const auto& row : profile::limit_rows())
        if (const double v = profile::limit_value(l, row); v > 0 && row.degraded)
            d.emplace_back(row.key, row.degraded(v));
    return d;
}

}  // namespace stockade::supervise
