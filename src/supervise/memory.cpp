#include "supervise/memory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "util/clock.hpp"
#include "util/fd.hpp"

namespace stockade::supervise {
namespace {

// A bounded read of a small /proc file; "" if it cannot be read.
std::string slurp(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    std::string out;
    char buf[4096];
    while (out.size() < (1u << 20)) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::optional<uint64_t> pss_of(pid_t pid) {
    const std::string s = slurp("/proc/" + std::to_string(pid) + "/smaps_rollup");
    const size_t at = s.find("\nPss:");
    if (at == std::string::npos) return std::nullopt;
    return std::strtoull(s.c_str() + at + 5, nullptr, 10) * 1024;  // "Pss:   1234 kB"
}

// The parent's pid from /proc/PID/stat (readable without ptrace access), or -1.
pid_t parent_of(pid_t pid) {
    const std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
    const size_t paren = s.rfind(')');  // the name may hold spaces and parentheses
    if (paren == std::string::npos || paren + 4 >= s.size()) return -1;
    return static_cast<pid_t>(std::strtol(s.c_str() + paren + 4, nullptr, 10));  // ") S PPID"
}

// The children of every thread of pid (a thread that forked is their parent).
void children_of(pid_t pid, std::vector<pid_t>& out) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        const std::string kids = slurp(dir + "/" + e->d_name + "/children");
        for (const char* p = kids.c_str(); *p;) {
            char* end;
            const long k = std::strtol(p, &end, 10);
            if (end == p) break;
            if (k > 0) out.push_back(static_cast<pid_t>(k));
            p = end;
        }
    }
    ::closedir(d);
}

}  // namespace

std::optional<uint64_t> process_pss_bytes(pid_t pid) { return pss_of(pid); }

namespace {
// How many PID namespaces deep pid is (its NSpid line's count), 0 if gone.
size_t pid_depth(pid_t pid) {
    const std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
    size_t at = status.find("\nNSpid:");
    if (at == std::string::npos) return 0;
    size_t end = status.find('\n', at + 1), n = 0;
    for (size_t i = at + 7; i < end; ++i)
        if (std::isdigit(static_cast<unsigned char>(status[i])) &&
            !std::isdigit(static_cast<unsigned char>(status[i - 1])))
            ++n;
    return n;
}
}  // namespace

std::optional<uint64_t> template_pss_bytes(pid_t init) {
    // The init may be unreadable to an unprivileged server (see tree_pss_bytes).
    if (::access(("/proc/" + std::to_string(init)).c_str(), F_OK) != 0) return std::nullopt;
    auto own = pss_of(init).value_or(0);
    std::vector<pid_t> kids;
    children_of(init, kids);
    const size_t depth = pid_depth(init);
    uint64_t total = own;
    for (pid_t k : kids)
        if (pid_depth(k) == depth) total += pss_of(k).value_or(0);
    return total;
}

std::optional<TreePss> tree_pss_bytes(pid_t root, uint64_t deadline_ns) {
    if (parent_of(root) < 0) return std::nullopt;  // gone
    TreePss out;
    if (monotonic_ns() >= deadline_ns) {
        out.complete = false;
        return out;
    }
    // The init is not dumpable, so an unprivileged server cannot read its
    // figure: it counts as zero then (a static binary whose pages the server
    // shares; well under a MiB). Everything it started is read.
    out.bytes = pss_of(root).value_or(0);
    // Breadth first, bounded: a jail holds at most its pids limit, and a fork
    // bomb between reads must not keep the server walking.
    std::vector<std::pair<pid_t, pid_t>> todo;  // (pid, the parent it was found under)
    std::vector<pid_t> kids;
    children_of(root, kids);
    for (pid_t k : kids) todo.emplace_back(k, root);
    for (size_t i = 0; i < todo.size(); ++i) {
        if (i >= 4096 || monotonic_ns() >= deadline_ns) {
            out.complete = false;
            break;
        }
        const auto [pid, parent] = todo[i];
        // Still the one found there: a pid that ended and was reused is not counted.
        if (parent_of(pid) != parent) continue;
        out.bytes += pss_of(pid).value_or(0);
        kids.clear();
        children_of(pid, kids);
        for (pid_t k : kids) todo.emplace_back(k, pid);
    }
    return out;
}

}  // namespace stockade::supervise
