#include "jail/sysctls.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "util/container.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::jail {
namespace {

long read_long(const char* path) {
    UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) return -1;
    char buf[32] = {};
    if (::read(fd.get(), buf, sizeof buf - 1) <= 0) return -1;
    return std::strtol(buf, nullptr, 10);
}

void write_value(const char* path, long value) {
    UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return;  // not on this kernel
        if (errno == EROFS) {
            // A container's /proc/sys is read-only (masked): its engine's fix.
            const std::string engine = container_engine();
            if (!engine.empty())
                throw Error(std::string("open ") + path + ": Read-only file system (the " + engine +
                                " container's /proc is masked; run it with " + container_proc_fix(engine) + ")",
                            EROFS);
        }
        throw_sys("open", path);
    }
    std::string v = std::to_string(value);
    if (::write(fd.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size())) throw_sys("write", path);
}

// The host-wide values live under fs.*; /proc/sys/user/ shows the writer's
// own user namespace.
constexpr std::pair<const char*, const char*> kQuotas[] = {
    {"/proc/sys/fs/inotify/max_user_instances", "max_inotify_instances"},
    {"/proc/sys/fs/inotify/max_user_watches", "max_inotify_watches"},
    {"/proc/sys/fs/fanotify/max_user_groups", "max_fanotify_groups"},
    {"/proc/sys/fs/fanotify/max_user_marks", "max_fanotify_marks"}};

// The kinds of namespace a jail may make none of, under /proc/sys/user as
// max_<kind>_namespaces. mnt's waits for the jail's root to be built, and
// cgroup's for its cgroup namespace (DeferredLimits); a fork of a template
// has both made already, bar cgroup's, which its runner zeroes.
constexpr const char* kNamespaces[] = {"user", "pid", "net", "ipc", "uts", "time", "mnt"};

}  // namespace

long quota_share(long parent) { return parent / 8 > 0 ? parent / 8 : 1; }

std::vector<std::pair<std::string, long>> fork_sysctls() {
    std::vector<std::pair<std::string, long>> out;
    for (const char* ns : kNamespaces) out.emplace_back("max_" + std::string(ns) + "_namespaces", 0);
    for (auto [host, mine] : kQuotas)
        if (long v = read_long(host); v > 0) out.emplace_back(mine, quota_share(quota_share(v)));
    return out;
}

DeferredLimits set_jail_sysctls(bool template_program) {
    // User-namespace counts are charged to every namespace up the chain, the
    // jail's creator included (root, for a root-run jail): a jail capped at an
    // eighth of its creator's inotify quota cannot starve systemd or udev.
    // Nested namespaces are refused by the filter already; 0 here holds even
    // if the filter were lifted.
    for (const std::string ns : kNamespaces)
        if (ns != "mnt" && (!template_program || ns == "time"))
            write_value(("/proc/sys/user/max_" + ns + "_namespaces").c_str(), 0);
    for (auto [host, mine] : kQuotas)
        if (long parent = read_long(host); parent > 0)
            write_value(("/proc/sys/user/" + std::string(mine)).c_str(), quota_share(parent));
    if (template_program) return {};
    return {UniqueFd(::open("/proc/sys/user/max_mnt_namespaces", O_WRONLY | O_CLOEXEC)),
            UniqueFd(::open("/proc/sys/user/max_cgroup_namespaces", O_WRONLY | O_CLOEXEC))};
}

void finish_jail_sysctls(DeferredLimits limits) {
    if (limits.mnt && ::write(limits.mnt.get(), "0", 1) != 1) throw_sys("write", "/proc/sys/user/max_mnt_namespaces");
    if (limits.cgroup && ::write(limits.cgroup.get(), "0", 1) != 1)
        throw_sys("write", "/proc/sys/user/max_cgroup_namespaces");
}

}  // namespace stockade::jail
