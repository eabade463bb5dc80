#include "mcp/backend.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "util/clock.hpp"
#include "util/error.hpp"
#include "util/event_loop.hpp"
#include "util/exit_codes.hpp"

namespace stockade::mcp {
namespace {

std::string self_exe() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) throw_sys("readlink", "/proc/self/exe");
    return std::string(buf, static_cast<size_t>(n));
}

std::string private_dir() {
    const char* x = std::getenv("XDG_RUNTIME_DIR");
    std::string base = (x && *x == '/' && ::access(x, W_OK) == 0) ? x : "/tmp";
    std::string tmpl = base + "/stockade-mcp-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw_sys("mkdtemp", tmpl);
    return tmpl;
}

}  // namespace

Backend::Backend(const std::vector<std::string>& serve_args, const std::vector<std::string>& modes)
    : dir_(private_dir()), modes_(modes) {
    const std::string exe = self_exe();
    const pid_t parent = ::getpid();
    try {
        for (const auto& mode : modes_) {
            std::string sock = dir_ + "/" + mode + ".sock";
            std::vector<std::string> args = {exe, "serve", "--socket", sock};
            args.insert(args.end(), serve_args.begin(), serve_args.end());
            args.push_back("--set");
            args.push_back("network.mode=" + mode);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            pid_t pid = ::fork();
            if (pid < 0) throw_sys("fork", "stockade serve");
            if (pid == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (::getppid() != parent) ::_exit(kExitStockadeFailed);
                // stdout is the MCP channel: the child's logs go to stderr only.
                ::dup2(2, 1);
                ::execv(exe.c_str(), argv.data());
                ::_exit(kExitNotFound);
            }
            children_[mode] = {pid, sock};
        }
    } catch (...) {
        stop();
        throw;
    }
}

Backend::~Backend() { stop(); }

void Backend::stop() {
    for (auto& [mode, c] : children_) ::kill(c.first, SIGTERM);
    for (auto& [mode, c] : children_) {
        // Drained within its tasks' timeouts; past 30 s, not waited for.
        int st;
        for (int i = 0; i < 3000 && ::waitpid(c.first, &st, WNOHANG) == 0; ++i) ::usleep(10000);
        if (::waitpid(c.first, &st, WNOHANG) == 0) {
            ::kill(c.first, SIGKILL);
            ::waitpid(c.first, &st, 0);
        }
        ::unlink(c.second.c_str());
    }
    children_.clear();
    if (!dir_.empty()) ::rmdir(dir_.c_str());
    dir_.clear();
}

// Ready means answering, not only listening: serve binds its socket before
// it has proved that a jail of its profile can start here, and a server that
// cannot exits then instead of answering.
bool Backend::answers(const std::string& mode, uint64_t until) const {
    UniqueFd fd;
    try {
        fd = connect(mode);
    } catch (const Error&) {
        return false;
    }
    static const char req[] = "{\"id\": 0, \"op\": \"stats\"}\n";
    if (::send(fd.get(), req, sizeof req - 1, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof req - 1)) return false;
    std::string got;
    bool closed = false;
    EventLoop loop;
    IoWatch answer(loop, fd.get(), POLLIN, [&](short) {
        char buf[4096];
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) closed = true;
        if (n > 0) got.append(buf, static_cast<size_t>(n));
    });
    while (got.find('\n') == std::string::npos) {
        const uint64_t now = monotonic_ns();
        if (closed || now > until || ended() >= 0) return false;
        loop.run_once(static_cast<int>(std::min<uint64_t>((until - now) / 1000000 + 1, 100)));
    }
    return got.find("\"pool\"") != std::string::npos;
}

void Backend::wait_ready(int timeout_ms) {
    const uint64_t until = monotonic_ns() + static_cast<uint64_t>(timeout_ms) * 1000000;
    for (const auto& mode : modes_) {
        while (!answers(mode, until)) {
            if (ended() >= 0) throw Error("mcp: stockade serve (network " + mode + ") exited; see its message above");
            if (monotonic_ns() > until) throw Error("mcp: stockade serve (network " + mode + ") did not start");
            ::usleep(10000);
        }
    }
}

UniqueFd Backend::connect(const std::string& mode) const {
    auto it = children_.find(mode);
    if (it == children_.end()) throw Error("network: mode " + mode + " is not allowed by the operator");
    const std::string& path = it->second.second;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) throw Error("mcp: socket path too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size());
    UniqueFd fd(check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) throw_sys("connect", path);
    ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
    return fd;
}

pid_t Backend::ended() const {
    for (const auto& [mode, c] : children_) {
        siginfo_t si{};
        if (::waitid(P_PID, static_cast<id_t>(c.first), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c.first)
            return c.first;
    }
    return -1;
}

}  // namespace stockade::mcp
