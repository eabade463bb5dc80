#include "serve/listener.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/error.hpp"
#include "util/fd.hpp"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace stockade::serve {
namespace {

// The socket's directory is ours alone (or, to let others in, ours and
// searchable): made, or if it is there, owned by us and writable by nobody
// else (else a planted socket could be taken for ours).
void prepare_dir(const std::string& dir, bool shared) {
    if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) throw_sys("mkdir", dir);
    struct stat st;
    check(::lstat(dir.c_str(), &st), "stat", dir);
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022))
        throw Error("serve: " + dir + " must be a directory owned by uid " + std::to_string(::geteuid()) +
                    " and writable by nobody else");
    // Others may pass through to the socket, never list or write the directory.
    mode_t want = shared ? (st.st_mode & 0755) | 0711 : st.st_mode & 0700;
    if ((st.st_mode & 07777) != want) check(::chmod(dir.c_str(), want), "chmod", dir);
}

int activated_socket() {
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    if (!pid || !fds || std::atoi(pid) != ::getpid() || std::atoi(fds) != 1) return -1;
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) return -1;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return 3;
}

void refuse(int fd, const std::string& code, const std::string& message) {
    std::string msg = "{\"id\":null,\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}\n";
    (void)!::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path)
        throw Error("serve: socket path too long (at most 107 bytes): " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size());
    return a;
}

bool same_user_namespace(int sock, pid_t pid) {
    // The peer's pidfd: from the socket itself where the kernel has it
    // (6.5), else by pid; either way checked alive after the namespace is
    // read, so a recycled pid cannot stand in for a dead peer.
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) pidfd = -1;
    if (pidfd < 0 && pid > 0) pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0 || pid <= 0) return false;
    UniqueFd owner(pidfd);
    const std::string dir = "/proc/" + std::to_string(pid);
    bool same;
    struct stat theirs, ours;
    if (::stat((dir + "/ns/user").c_str(), &theirs) == 0 && ::stat("/proc/self/ns/user", &ours) == 0) {
        same = theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino;
    } else {
        // The namespace link needs ptrace access (a server of uid 65534 that
        // admits root has none). The id maps are readable by all, and shown
        // relative to the reader: another namespace shows another map, unless
        // root of ours made it with the whole range, and root may anyway.
        const std::string uid_map = read_small_file(dir + "/uid_map");
        same = !uid_map.empty() && uid_map == read_small_file("/proc/self/uid_map") &&
               read_small_file(dir + "/gid_map") == read_small_file("/proc/self/gid_map");
    }
    // Still the same process: its pidfd is not readable (it would be, once
    // the process has exited, whatever now holds its pid).
    struct pollfd p {
        pidfd, POLLIN, 0
    };
    if (::poll(&p, 1, 0) != 0) return false;
    return same;
}

Listener::Listener(std::string path, std::vector<uid_t> allow_uids, std::vector<gid_t> allow_gids)
    : path_(std::move(path)), uids_(std::move(allow_uids)), gids_(std::move(allow_gids)) {
    reserve_ = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (int fd = activated_socket(); fd >= 0) {
        // systemd's socket (stockade-serve.socket) made and owns it.
        fd_ = UniqueFd(fd);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        activated_ = true;
        path_ = "the socket systemd passed (fd 3)";
        return;
    }
    const bool shared = !uids_.empty() || !gids_.empty();
    size_t slash = path_.rfind('/');
    if (slash != std::string::npos && slash > 0) {
        dir_ = path_.substr(0, slash);
        prepare_dir(dir_, shared);
    }
    sockaddr_un a = unix_address(path_);
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw Error("serve: " + path_ + " exists and is not a socket");
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
            throw Error("serve: a server is already listening on " + path_ + " (stockade serve --check)");
        ::unlink(path_.c_str());  // left by a server that was killed
    }
    fd_ = UniqueFd(check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket", path_));
    mode_t old = ::umask(0177);
    int rc = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::umask(old);
    if (rc < 0) throw_sys("bind", path_);
    // connect() needs write permission on the socket file: allowed peers get
    // it, and each is then checked by its credentials.
    if (shared) check(::chmod(path_.c_str(), 0666), "chmod", path_);
    check(::listen(fd_.get(), 128), "listen", path_);
    check(::lstat(path_.c_str(), &st), "stat", path_);
    ino_ = st.st_ino;
}

Listener::~Listener() {
    // The socket file goes with the server, unless another server has replaced it.
    struct stat st;
    if (ino_ && ::lstat(path_.c_str(), &st) == 0 && st.st_ino == ino_) ::unlink(path_.c_str());
}

std::optional<Peer> Listener::accept(bool* again, std::string* why) {
    *again = false;
    int fd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
            // The fd table is full: the pending connection would make poll
            // report the socket ready forever. Spend the reserve to take it
            // off the queue and close it, then take the reserve back.
            reserve_.reset();
            int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0) {
                refuse(c, "busy", "the server has no file descriptors left; try again later");
                ::close(c);
            }
            reserve_ = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (c >= 0) *why = "refused a connection: no file descriptors left (EMFILE)";
            *again = c >= 0;
        } else if (errno == EINTR || errno == ECONNABORTED) {
            *again = true;
        }
        return std::nullopt;
    }
    *again = true;
    Peer p;
    p.fd = UniqueFd(fd);
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return std::nullopt;
    p.uid = cred.uid;
    p.gid = cred.gid;
    p.pid = cred.pid;
    bool ok = cred.uid == ::geteuid() || std::find(uids_.begin(), uids_.end(), cred.uid) != uids_.end() ||
              std::find(gids_.begin(), gids_.end(), cred.gid) != gids_.end();
    if (!ok) {
        refuse(fd, "forbidden", "uid " + std::to_string(cred.uid) + " may not use this server (--allow-uid)");
        *why = "refused uid " + std::to_string(cred.uid) + " pid " + std::to_string(cred.pid) + ": not allowed";
        return std::nullopt;
    }
    if (!same_user_namespace(fd, cred.pid)) {
        refuse(fd, "forbidden", "a process in another user namespace (a jail) may not use this server");
        *why = "refused pid " + std::to_string(cred.pid) + " (uid " + std::to_string(cred.uid) +
               "): not in the server's user namespace";
        return std::nullopt;
    }
    return p;
}

}  // namespace stockade::serve
