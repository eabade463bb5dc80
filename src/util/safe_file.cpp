#include "util/safe_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "util/error.hpp"

namespace stockade {

HostFile::HostFile(const std::string& path, bool remove_stale) : path_(path) {
    if (path.empty() || path.back() == '/') throw Error(path + ": expected a file name, not a directory");
    if (path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0) {
        // The caller's own fd, duplicated rather than reopened: a pipe another
        // user made cannot be reopened through /proc, and a dup shares the
        // caller's offset, as writing to the fd itself would.
        int fd = -1;
        if (path == "/dev/stdout")
            fd = 1;
        else if (path == "/dev/stderr")
            fd = 2;
        for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"}) {
            const std::string p(prefix);
            if (path.rfind(p, 0) == 0 && path.size() > p.size() &&
                path.find_first_not_of("0123456789", p.size()) == std::string::npos)
                fd = std::atoi(path.c_str() + p.size());
        }
        through_ = UniqueFd(fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 3)
                                    : ::open(path.c_str(), O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC));
        if (!through_) throw_sys("open", path);
        struct stat st;
        check(::fstat(through_.get(), &st), "stat", path);
        // A pipe, a socket, a terminal, /dev/null, or the file a caller's fd
        // points at; never a disk.
        if (S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
            throw Error(path + ": expected a pipe, a terminal or a file, not a device or directory");
        return;
    }
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    base_ = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base_ == "." || base_ == "..") throw Error(path + ": expected a file name, not a directory");
    // The directory is resolved now, before any jail runs: what the jail does to
    // it later cannot redirect where the file lands.
    dir_ = UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_) throw_sys("open directory", dir + " (for " + path + ")");
    // A directory that cannot take the file is found now, before the program
    // runs, not after it (read-only file systems included, even for root).
    if (::faccessat(dir_.get(), ".", W_OK, AT_EACCESS) < 0)
        throw_sys("write into directory", dir + " (for " + path + ")");
    struct stat st;
    if (::fstatat(dir_.get(), base_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) throw Error(path + ": is a directory");
        if (remove_stale && ::unlinkat(dir_.get(), base_.c_str(), 0) < 0 && errno != ENOENT)
            throw_sys("remove stale", path);
    }
}

void HostFile::write(const std::string& text) const {
    if (through_) return write_all(through_.get(), text.data(), text.size(), path_.c_str());
    if (!dir_) return;
    // O_TMPFILE would need a linkat that can replace; a named temporary with
    // O_EXCL|O_NOFOLLOW is as safe: it is created fresh or not at all.
    std::string tmp;
    UniqueFd fd;
    for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
        unsigned long long r = 0;
        if (::getrandom(&r, sizeof r, 0) != sizeof r)
            r = static_cast<unsigned long long>(::getpid()) * 2654435761u + attempt;
        char name[64];
        std::snprintf(name, sizeof name, ".%.24s.%016llx.tmp", base_.c_str(), r);
        tmp = name;
        fd = UniqueFd(::openat(dir_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!fd && errno != EEXIST) throw_sys("create", path_);
    }
    if (!fd) throw_sys("create", path_);
    struct Unlink {
        int dir;
        const std::string& name;
        bool armed = true;
        ~Unlink() {
            if (armed) ::unlinkat(dir, name.c_str(), 0);
        }
    } cleanup{dir_.get(), tmp};
    // 0644 whatever the umask: the caller asked for a readable result.
    ::fchmod(fd.get(), 0644);
    write_all(fd.get(), text.data(), text.size(), path_.c_str());
    if (::renameat(dir_.get(), tmp.c_str(), dir_.get(), base_.c_str()) < 0) throw_sys("rename into place", path_);
    cleanup.armed = false;
}

}  // namespace stockade
