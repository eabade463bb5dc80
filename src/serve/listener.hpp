// serve's listening socket and who may come through it. The socket file's
// mode and its directory follow who is allowed (only us: 0600 in a 0700
// directory; --allow-uid/--allow-gid: reachable, then checked per peer). Each
// peer is checked by its credentials and by its user namespace: a process in
// a jail runs as a host uid (65534 for root's jails) that an operator may well
// allow, but it is never a client. Accepting survives a full fd table.
#pragma once
#include <sys/types.h>
#include <sys/un.h>

#include <optional>
#include <string>
#include <vector>

#include "util/fd.hpp"

namespace stockade::serve {

struct Peer {
    UniqueFd fd;
    uid_t uid = 0;
    gid_t gid = 0;
    pid_t pid = 0;
};

class Listener {
public:
    // Binds `path` (or takes systemd's socket, LISTEN_FDS), for our uid and
    // those allowed. Throws Error.
    Listener(std::string path, std::vector<uid_t> allow_uids, std::vector<gid_t> allow_gids);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }
    // The directory no jail may see (empty with socket activation).
    const std::string& dir() const { return dir_; }
    bool activated() const { return activated_; }

    // One connection, checked; nullopt when none is waiting. A refused peer
    // gets one error line and is closed; `refusals` counts them, and
    // `why` says the last reason (for the log).
    std::optional<Peer> accept(bool* again, std::string* why);

private:
    std::string path_, dir_;
    std::vector<uid_t> uids_;
    std::vector<gid_t> gids_;
    UniqueFd fd_;
    UniqueFd reserve_;  // spent to accept-and-close when the fd table is full
    ino_t ino_ = 0;
    bool activated_ = false;
};

// Whether the process `pid` is in our user namespace, checked race-free
// against pid reuse (by pidfd). False when it cannot be told.
bool same_user_namespace(int sock, pid_t pid);

// sockaddr_un for a path; throws Error when it does not fit.
sockaddr_un unix_address(const std::string& path);

}  // namespace stockade::serve
