#include "seccomp/notify.hpp"

#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "seccomp/catalog.hpp"

namespace stockade::seccomp {
namespace {

std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
    return v == 0 ? "0" : b;
}

std::string family(uint64_t v) {
    static const std::map<uint64_t, const char*> names = {
        {AF_UNIX, "AF_UNIX"}, {AF_INET, "AF_INET"},     {AF_INET6, "AF_INET6"}, {AF_NETLINK, "AF_NETLINK"},
        {AF_PACKET, "AF_PACKET"}, {AF_VSOCK, "AF_VSOCK"}, {AF_ALG, "AF_ALG"},   {AF_KEY, "AF_KEY"},
        {AF_BLUETOOTH, "AF_BLUETOOTH"}, {AF_CAN, "AF_CAN"}, {AF_TIPC, "AF_TIPC"}, {AF_RDS, "AF_RDS"}};
    auto it = names.find(v & 0xffffffffu);
    return it != names.end() ? it->second : hex(v);
}

std::string sock_type(uint64_t v) {
    std::string base;
    switch (v & 0xf) {
        case SOCK_STREAM: base = "SOCK_STREAM"; break;
        case SOCK_DGRAM: base = "SOCK_DGRAM"; break;
        case SOCK_RAW: base = "SOCK_RAW"; break;
        case SOCK_SEQPACKET: base = "SOCK_SEQPACKET"; break;
        default: return hex(v);
    }
    if (v & SOCK_CLOEXEC) base += "|SOCK_CLOEXEC";
    if (v & SOCK_NONBLOCK) base += "|SOCK_NONBLOCK";
    return base;
}

}  // namespace

std::string format_call(const std::string& name, const uint64_t a[6]) {
    if (name == "socket" || name == "socketpair")
        return name + "(" + family(a[0]) + ", " + sock_type(a[1]) + ", " + std::to_string(a[2]) + ", ...)";
    if (name == "ioctl") {
        std::string req = hex(a[1]);
        for (const auto& r : core_arg_rules())
            if (name == r.syscall && (a[1] & r.mask) == r.value) req = r.what + std::string(a[1] >> 32 ? " (high bits set)" : "");
        return "ioctl(" + std::to_string(static_cast<int>(a[0])) + ", " + req + ", ...)";
    }
    if (name == "clone") {
        std::string flags;
        for (const auto& r : core_arg_rules())
            if (name == r.syscall && (a[0] & r.mask) == r.value) flags += (flags.empty() ? "" : "|") + std::string(r.what);
        return "clone(" + (flags.empty() ? hex(a[0]) : flags + "|...") + ", ...)";
    }
    return name + "(" + hex(a[0]) + ", " + hex(a[1]) + ", " + hex(a[2]) + ", ...)";
}

bool Notifier::handle(int fd) {
    struct seccomp_notif* req = nullptr;
    struct seccomp_notif_resp* resp = nullptr;
    if (seccomp_notify_alloc(&req, &resp) < 0) return true;
    bool alive = true;
    int rc = seccomp_notify_receive(fd, req);
    if (rc < 0) {
        // ENOENT: the caller died (or was killed) before we read it. Anything
        // else on a listener means no process is left behind its filter.
        alive = rc == -ENOENT || rc == -EINTR;
        seccomp_notify_free(req, resp);
        return alive;
    }
    uint64_t args[6];
    for (int i = 0; i < 6; ++i) args[i] = req->data.args[i];
    Decision d = decide(spec_, req->data.nr, args);
    resp->id = req->id;
    resp->val = 0;
    resp->flags = 0;
    if (d.err < 0) {
        // learn mode: let it through, remember it
        resp->error = 0;
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        learned_.insert(name_of(req->data.nr));
        seccomp_notify_respond(fd, resp);
    } else if (d.kill) {
        // Ends the caller while it still sits in the refused call: it never
        // sees a return value. pidfd + id check: the pid cannot have been reused.
        int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, req->pid, 0));
        if (pidfd >= 0 && seccomp_notify_id_valid(fd, req->id) == 0)
            ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
        if (pidfd >= 0) ::close(pidfd);
        killed_ = true;
        record(req->data.nr, args, 0, d.core, true);
    } else {
        resp->error = -d.err;
        seccomp_notify_respond(fd, resp);
        record(req->data.nr, args, d.err, d.core, false);
    }
    seccomp_notify_free(req, resp);
    return alive;
}

void Notifier::record(int nr, const uint64_t args[6], int err, bool core, bool killed) {
    std::string name = name_of(nr);
    if (name.empty()) name = "syscall_" + std::to_string(nr);
    std::string call = format_call(name, args);
    for (auto& v : violations_) {
        if (v.call == call && v.err == err) {
            ++v.count;
            return;
        }
    }
    // Bounded: a program looping on a refused call must not grow the supervisor.
    if (violations_.size() >= 256) {
        ++violations_.back().count;
        return;
    }
    violations_.push_back({nr, name, call, err, core, killed, 1});
}

std::string summarize(const std::vector<Violation>& v) {
    if (v.empty()) return {};
    unsigned total = 0;
    for (const auto& x : v) total += x.count;
    std::string s = "refused " + std::to_string(total) + (total == 1 ? " syscall: " : " syscalls: ");
    size_t shown = 0;
    for (const auto& x : v) {
        if (shown == 8) {
            s += ", ...";
            break;
        }
        s += (shown++ ? ", " : "") + x.call;
        if (x.count > 1) s += " x" + std::to_string(x.count);
        if (x.killed) s += " (process killed)";
    }
    return s;
}

}  // namespace stockade::seccomp
