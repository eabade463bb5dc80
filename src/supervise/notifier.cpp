#include "supervise/notifier.hpp"

#include <seccomp.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>
#include <algorithm>

#include "seccomp/catalog.hpp"
#include "seccomp/families.hpp"

namespace stockade::supervise {

using namespace seccomp;
namespace {

std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
    return v == 0 ? "0" : b;
}

std::string family(uint64_t v) {
    const Family* f = family_by_number(v);
    return f ? f->macro : hex(v);
}

std::string sock_type(uint64_t v) {
    std::string base;
    switch (v & 0xf) {
        case SOCK_STREAM:
            base = "SOCK_STREAM";
            break;
        case SOCK_DGRAM:
            base = "SOCK_DGRAM";
            break;
        case SOCK_RAW:
            base = "SOCK_RAW";
            break;
        case SOCK_SEQPACKET:
            base = "SOCK_SEQPACKET";
            break;
        default:
            return hex(v);
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
            if (name == r.syscall && (a[1] & r.mask) == r.value)
                req = r.what + std::string(a[1] >> 32 ? " (high bits set)" : "");
        return "ioctl(" + std::to_string(static_cast<int>(a[0])) + ", " + req + ", ...)";
    }
    if (name == "clone") {
        std::string flags;
        for (const auto& r : core_arg_rules())
            if (name == r.syscall && (a[0] & r.mask) == r.value)
                flags += (flags.empty() ? "" : "|") + std::string(r.what);
        return "clone(" + (flags.empty() ? hex(a[0]) : flags + "|...") + ", ...)";
    }
    return name + "(" + hex(a[0]) + ", " + hex(a[1]) + ", " + hex(a[2]) + ", ...)";
}

namespace {
constexpr double kBurst = 1000;  // answered at once
constexpr double kRate = 500;    // then this many a second
constexpr double kBatch = 50;
uint64_t now_ns() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The thread group (process) of a host tid, or -1.
long read_tgid(uint32_t tid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/status", tid);
    FILE* f = std::fopen(path, "re");
    if (!f) return -1;
    char line[256];
    long tgid = -1;
    while (tgid < 0 && std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "Tgid:", 5) == 0) tgid = std::strtol(line + 5, nullptr, 10);
    std::fclose(f);
    return tgid;
}
}  // namespace

Notifier::Notifier(const Spec& spec) : spec_(spec), tokens_(kBurst), refilled_ns_(now_ns()) {
    // Allocated once: the notification path does no allocation of its own.
    if (seccomp_notify_alloc(&req_, &resp_) < 0) req_ = nullptr, resp_ = nullptr;
}

Notifier::~Notifier() {
    if (req_) seccomp_notify_free(req_, resp_);
}

int Notifier::wait_ms() {
    uint64_t now = now_ns();
    tokens_ = std::min(kBurst, tokens_ + static_cast<double>(now - refilled_ns_) * kRate / 1e9);
    refilled_ns_ = now;
    // --learn lets every call through this path: a trusted measuring run, unthrottled.
    if (spec_.learn) tokens_ = kBurst;
    // Once the burst is spent, answers go out in batches: one wake-up of the
    // loop per kBatch refusals rather than one per refusal.
    if (tokens_ >= 1 && (!throttled_ || tokens_ >= kBatch)) {
        throttled_ = false;
        return 0;
    }
    throttled_ = true;
    return static_cast<int>((kBatch - tokens_) * 1000 / kRate) + 1;
}

void Notifier::drain(int fd) {
    for (int n = 0; n < 256 && tokens_ >= 1; ++n) {
        if (!handle(fd)) {
            close_listener(fd);
            return;
        }
        struct pollfd p {
            fd, POLLIN, 0
        };
        if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) return;
    }
}

// The caller's whole process (not only the thread that made the call), while
// it still sits in the refused call: it never sees a return value. The tgid is
// read while the notification is pending, and checked again after the pidfd
// is open, so it cannot have been reused.
bool Notifier::kill_process(int fd, uint64_t id, uint32_t tid) {
    const long tgid = read_tgid(tid);
    if (tgid <= 0) return false;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, tgid, 0));
    if (pidfd < 0) return false;
    bool ok = seccomp_notify_id_valid(fd, id) == 0 && ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0;
    ::close(pidfd);
    return ok;
}

// memfd_create(name, flags) done here with MFD_NOEXEC_SEAL added, and the fd
// placed in the caller as the call's own result (SECCOMP_ADDFD_FLAG_SEND).
// The name is only a label: reading it racily from the caller's memory is
// harmless. Pages written to the memfd are charged to the writer, the jail.
bool Notifier::make_sealed_memfd(int fd, const struct seccomp_notif* req) {
    char name[250] = "memfd";
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%u/mem", req->pid);
    if (int mem = ::open(path, O_RDONLY | O_CLOEXEC); mem >= 0) {
        char buf[250] = {};
        ssize_t n = ::pread(mem, buf, sizeof buf - 1, static_cast<off_t>(req->data.args[0]));
        ::close(mem);
        if (n > 0 && std::memchr(buf, '\0', static_cast<size_t>(n))) std::memcpy(name, buf, sizeof name);
    }
    const unsigned flags = static_cast<unsigned>(req->data.args[1]);
    int memfd =
        static_cast<int>(::syscall(SYS_memfd_create, name, (flags & ~MFD_CLOEXEC) | kMfdNoexecSeal | MFD_CLOEXEC));
    // Before 6.3 there is no such seal; the result lists memfd_noexec as degraded.
    if (memfd < 0 && errno == EINVAL)
        memfd = static_cast<int>(::syscall(SYS_memfd_create, name, (flags & ~MFD_CLOEXEC) | MFD_CLOEXEC));
    if (memfd < 0) {
        resp_->error = -errno;
        seccomp_notify_respond(fd, resp_);
        return false;
    }
    struct seccomp_notif_addfd add {};
    add.id = req->id;
    add.flags = SECCOMP_ADDFD_FLAG_SEND;
    add.srcfd = static_cast<uint32_t>(memfd);
    add.newfd_flags = (flags & MFD_CLOEXEC) ? O_CLOEXEC : 0;
    int rc = ::ioctl(fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    int err = errno;
    ::close(memfd);
    if (rc < 0 && err != ENOENT) {
        resp_->error = -err;
        seccomp_notify_respond(fd, resp_);
    }
    return rc >= 0;
}

bool Notifier::handle(int fd) {
    if (!req_) return true;
    tokens_ -= 1;
    std::memset(req_, 0, sizeof *req_);
    int rc = seccomp_notify_receive(fd, req_);
    if (rc < 0) {
        // ENOENT: the caller died (or was killed) before we read it. Anything
        // else on a listener means no process is left behind its filter.
        return rc == -ENOENT || rc == -EINTR;
    }
    struct seccomp_notif* req = req_;
    struct seccomp_notif_resp* resp = resp_;
    uint64_t args[6];
    for (int i = 0; i < 6; ++i) args[i] = req->data.args[i];
    Decision d = decide(spec_, req->data.nr, args);
    resp->id = req->id;
    resp->val = 0;
    resp->flags = 0;
    resp->error = 0;
    if (d.sealed_memfd && d.err == 0) {
        make_sealed_memfd(fd, req);
        return true;
    }
    if (d.err < 0) {
        // learn mode: let it through, remember it
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        learned_.insert(name_of(req->data.nr));
        seccomp_notify_respond(fd, resp);
    } else if (d.kill) {
        if (!kill_process(fd, req->id, req->pid)) {
            // Gone already, or not aimable: the whole jail ends instead, and
            // the call is never answered meanwhile.
            kill_jail_ = true;
        }
        killed_ = true;
        record(req->data.nr, args, 0, d.core, true);
    } else {
        resp->error = -d.err;
        seccomp_notify_respond(fd, resp);
        record(req->data.nr, args, d.err, d.core, false);
    }
    return true;
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

}  // namespace stockade::supervise
