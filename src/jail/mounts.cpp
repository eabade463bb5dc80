#include "jail/mounts.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>

#include "util/error.hpp"

namespace stockade::jail {
namespace {

using Kind = MountOp::Kind;

std::string magic(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// Builds the root tree. Every target is reached one component at a time with
// O_NOFOLLOW from the new root's own fd, so nothing a bind brings in (a symlink
// planted in a --rw directory, say) can redirect a later mount elsewhere.
class RootBuilder {
public:
    RootBuilder(const Plan& plan, const std::vector<UniqueFd>& sources, int script_fd)
        : plan_(plan), sources_(sources), script_fd_(script_fd) {}

    void build() {
        // Nothing we do here may propagate back to the caller's namespace, and
        // pivot_root refuses shared mounts.
        check(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "make / private", "");
        // /tmp is only the attachment point; the host's /tmp is untouched (this is
        // our private copy of the mount table) and the sources were opened before.
        check(::mount("stockade", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), "mount tmpfs", "(new root)");
        root_ = UniqueFd(check(::open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "(new root)"));
        own_devs_.insert(dev_of(root_.get(), "/"));

        for (size_t i = 0; i < plan_.mounts.size(); ++i) apply(plan_.mounts[i], i);

        // Populated: now freeze the root and the read-only tmpfs mounts (/dev).
        for (auto& fd : freeze_) set_attr(fd.get(), MOUNT_ATTR_RDONLY, false, "read-only");
        set_attr(root_.get(), MOUNT_ATTR_RDONLY, false, "read-only /");

        check(::fchdir(root_.get()), "chdir", "(new root)");
        check(static_cast<int>(::syscall(SYS_pivot_root, ".", ".")), "pivot_root", "(new root)");
        // The old root is now stacked on "."; detaching it leaves only the jail's tree.
        check(::umount2(".", MNT_DETACH), "detach", "host root");
        check(::chdir("/"), "chdir", "/");
    }

private:
    dev_t dev_of(int dirfd, const std::string& what) {
        struct stat st;
        check(::fstatat(dirfd, "", &st, AT_EMPTY_PATH), "stat", what);
        return st.st_dev;
    }

    [[noreturn]] void refuse(const MountOp& op, const std::string& why) {
        throw Error(op.origin + ": mount target " + op.dst + ": " + why);
    }

    // The directory that will hold op.dst's last component, creating missing
    // directories, but only on our own tmpfs mounts: stockade never creates paths
    // inside a bind from the host. Directory fds are cached by jail path; a
    // mount on a path drops the cache below it, since the old fds now point
    // under the mount.
    int open_parent(const MountOp& op, std::string& leaf) {
        size_t slash = op.dst.rfind('/');
        leaf = op.dst.substr(slash + 1);
        return dir_fd(op, slash == 0 ? "/" : op.dst.substr(0, slash));
    }

    int dir_fd(const MountOp& op, const std::string& path) {
        if (path == "/") return root_.get();
        auto it = dirs_.find(path);
        if (it != dirs_.end()) return it->second.get();
        size_t slash = path.rfind('/');
        int parent = dir_fd(op, slash == 0 ? "/" : path.substr(0, slash));
        UniqueFd fd = open_component(op, parent, path.substr(slash + 1), path, true);
        return dirs_.emplace(path, std::move(fd)).first->second.get();
    }

    void mounted_on(const std::string& path) {
        for (auto it = dirs_.lower_bound(path); it != dirs_.end();) {
            if (it->first != path && it->first.compare(0, path.size() + 1, path + "/") != 0) break;
            it = dirs_.erase(it);
        }
    }

    UniqueFd open_component(const MountOp& op, int dirfd, const std::string& name, const std::string& path,
                            bool want_dir) {
        int flags = O_PATH | O_NOFOLLOW | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0);
        int fd = ::openat(dirfd, name.c_str(), flags);
        if (fd >= 0) return UniqueFd(fd);
        int err = errno;
        struct stat st;
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(st.st_mode))
                refuse(op, path + " is a symlink; refusing to follow it (a bind brought it in, or the tree changed)");
            if (want_dir) refuse(op, path + " exists and is not a directory");
        }
        if (err != ENOENT || !want_dir) throw_sys_errno(err, op.origin + ": open mount target", path);
        if (!own_devs_.count(dev_of(dirfd, path)))
            refuse(op,
                   path + " does not exist inside a bind from the host; stockade does not create paths on the host");
        check(::mkdirat(dirfd, name.c_str(), 0755), "mkdir", path);
        return UniqueFd(check(::openat(dirfd, name.c_str(), flags), "open", path));
    }

    // Creates (or finds) the leaf that a mount lands on: a directory or an empty file.
    UniqueFd open_leaf(const MountOp& op, int parent, const std::string& leaf, bool dir) {
        if (dir) return open_component(op, parent, leaf, op.dst, true);
        int fd = ::openat(parent, leaf.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            UniqueFd f(fd);
            struct stat st;
            check(::fstat(fd, &st), "stat", op.dst);
            if (S_ISLNK(st.st_mode)) refuse(op, "is a symlink; refusing to follow it");
            if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) refuse(op, "exists and is not a file");
            return f;
        }
        if (errno != ENOENT) throw_sys(op.origin + ": open mount target", op.dst);
        if (!own_devs_.count(dev_of(parent, op.dst)))
            refuse(op, "does not exist inside a bind from the host; stockade does not create paths on the host");
        UniqueFd created(
            check(::openat(parent, leaf.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0444),
                  "create mount point", op.dst));
        return UniqueFd(check(::openat(parent, leaf.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC), "open", op.dst));
    }

    void set_attr(int fd, uint64_t attrs, bool recursive, const std::string& what) {
        struct mount_attr a {};
        a.attr_set = attrs;
        unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
        check(::mount_setattr(fd, "", flags, &a, sizeof a), "mount_setattr " + what, "");
    }

    void bind(const MountOp& op, size_t index) {
        int src = sources_.at(index).get();
        struct stat st;
        check(::fstat(src, &st), "stat", op.src);
        std::string leaf;
        int parent = open_parent(op, leaf);
        UniqueFd target = open_leaf(op, parent, leaf, S_ISDIR(st.st_mode));
        const std::string what = op.src + " -> " + op.dst;
        // A recursive clone: a non-recursive bind of a tree with locked submounts
        // would be refused, and the submounts must stay covered anyway.
        UniqueFd tree(::open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE));
        if (!tree) throw_sys("bind", what);
        uint64_t attrs = MOUNT_ATTR_NOSUID;
        if (op.kind != Kind::Device) attrs |= MOUNT_ATTR_NODEV;
        if (!op.writable) attrs |= MOUNT_ATTR_RDONLY;
        if (op.noexec) attrs |= MOUNT_ATTR_NOEXEC;
        set_attr(tree.get(), attrs, true, what);
        if (::move_mount(tree.get(), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            throw_sys("mount", what);
        mounted_on(op.dst);
    }

    void tmpfs(const MountOp& op) {
        std::string leaf;
        int parent = open_parent(op, leaf);
        UniqueFd target = open_leaf(op, parent, leaf, true);
        char data[96];
        std::snprintf(data, sizeof data, "mode=%o,size=%llu", op.mode, static_cast<unsigned long long>(op.size));
        unsigned long flags = MS_NOSUID | MS_NODEV | (op.noexec ? MS_NOEXEC : 0);
        if (::mount("tmpfs", magic(target.get()).c_str(), "tmpfs", flags, data) < 0) throw_sys("mount tmpfs", op.dst);
        mounted_on(op.dst);
        int mounted = dir_fd(op, op.dst);
        own_devs_.insert(dev_of(mounted, op.dst));
        if (!op.writable) freeze_.push_back(UniqueFd(check(::dup(mounted), "dup", op.dst)));
    }

    void proc(const MountOp& op) {
        std::string leaf;
        int parent = open_parent(op, leaf);
        UniqueFd target = open_leaf(op, parent, leaf, true);
        // subset=pid: only the jail's processes, none of /proc/sys, /proc/kcore & co.
        const char* data = plan_.proc == profile::ProcMode::Pid ? "subset=pid" : nullptr;
        if (::mount("proc", magic(target.get()).c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, data) < 0)
            throw_sys("mount proc", op.dst);
        mounted_on(op.dst);
    }

    void devpts(const MountOp& op) {
        std::string leaf;
        int parent = open_parent(op, leaf);
        UniqueFd target = open_leaf(op, parent, leaf, true);
        // newinstance: the jail's ptys are its own, numbered from 0, and none of
        // the host's is visible. No gid=: the tty group is not mapped in here.
        if (::mount("devpts", magic(target.get()).c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                    "newinstance,ptmxmode=0666,mode=0620") < 0)
            throw_sys("mount devpts", op.dst);
        mounted_on(op.dst);
    }

    void make_file(const MountOp& op) {
        std::string leaf;
        int parent = open_parent(op, leaf);
        UniqueFd f(::openat(parent, leaf.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, op.mode));
        if (!f) throw_sys(op.origin + ": create", op.dst);
        if (op.kind == Kind::File) {
            write_all(f.get(), op.content.data(), op.content.size(), op.dst.c_str());
        } else {
            // The script is copied, never bound: the jail sees a private snapshot,
            // readable by its own user even when the caller's file is 0600.
            while (true) {
                ssize_t n = ::sendfile(f.get(), script_fd_, nullptr, 1 << 30);
                if (n < 0) throw_sys("copy script", op.src + " -> " + op.dst);
                if (n == 0) break;
            }
        }
    }

    void apply(const MountOp& op, size_t index) {
        switch (op.kind) {
            case Kind::Bind:
            case Kind::Device:
                return bind(op, index);
            case Kind::Tmpfs:
                return tmpfs(op);
            case Kind::Proc:
                return proc(op);
            case Kind::Devpts:
                return devpts(op);
            case Kind::File:
            case Kind::Script:
                return make_file(op);
            case Kind::Dir: {
                dir_fd(op, op.dst);
                return;
            }
            case Kind::Symlink: {
                std::string leaf;
                int parent = open_parent(op, leaf);
                if (::symlinkat(op.src.c_str(), parent, leaf.c_str()) < 0)
                    throw_sys(op.origin + ": symlink", op.dst + " -> " + op.src);
                return;
            }
        }
    }

    const Plan& plan_;
    const std::vector<UniqueFd>& sources_;
    int script_fd_;
    UniqueFd root_;
    std::map<std::string, UniqueFd> dirs_;
    std::set<dev_t> own_devs_;
    std::vector<UniqueFd> freeze_;
};

}  // namespace

std::vector<UniqueFd> open_sources(const Plan& plan) {
    std::vector<UniqueFd> fds(plan.mounts.size());
    for (size_t i = 0; i < plan.mounts.size(); ++i) {
        const MountOp& m = plan.mounts[i];
        if (m.kind != Kind::Bind && m.kind != Kind::Device) continue;
        int fd = ::open(m.src.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) throw_sys(m.origin + ": bind source", m.src);
        fds[i] = UniqueFd(fd);
        struct stat st;
        check(::fstat(fd, &st), "stat", m.src);
        // Checked again here, not only in plan: the path may have been swapped since.
        if (S_ISLNK(st.st_mode)) throw Error(m.origin + ": bind source " + m.src + " is a symlink; name the real path");
    }
    return fds;
}

void check_source_access(const Plan& plan, const std::vector<UniqueFd>& sources) {
    for (size_t i = 0; i < plan.mounts.size(); ++i) {
        const MountOp& m = plan.mounts[i];
        if (m.kind != Kind::Bind || !sources[i]) continue;
        struct stat st;
        check(::fstat(sources[i].get(), &st), "stat", m.src);
        int want = R_OK | (S_ISDIR(st.st_mode) ? X_OK : 0) | (m.writable ? W_OK : 0);
        // access() checks the real ids, which are the jail's by now; capabilities do
        // not count because the jail's uid is not root in its namespace.
        if (::access(magic(sources[i].get()).c_str(), want) < 0) {
            int err = errno;
            // The one command that fixes it (as root, the jail's user is an unprivileged host uid).
            const std::string fix = m.writable ? "chown " + std::to_string(plan.host_uid) + ":" +
                                                     std::to_string(plan.host_gid) + " " + m.src
                                               : "chmod o+r" + std::string(S_ISDIR(st.st_mode) ? "X " : " ") + m.src;
            throw Error(m.origin + ": " + m.src + " is not " + (m.writable ? "readable and writable" : "readable") +
                            " by the jail's user (host uid " + std::to_string(plan.host_uid) +
                            "): " + std::strerror(err) + "; to let it, run: " + fix,
                        err);
        }
    }
}

void build_root(const Plan& plan, const std::vector<UniqueFd>& sources, int script_fd) {
    RootBuilder(plan, sources, script_fd).build();
}

}  // namespace stockade::jail
