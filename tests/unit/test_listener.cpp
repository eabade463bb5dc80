#include <doctest/doctest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "serve/listener.hpp"

using stockade::serve::Listener;

// With the fd table full, a pending connection would keep the listening
// socket readable forever (a naive loop spins on EMFILE). The listener takes
// it off the queue with its reserve fd and says why; then nothing is pending.
TEST_CASE("listener: a full fd table refuses the pending client and leaves nothing pending") {
    char dir[] = "/tmp/stockade-listener-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    const std::string path = std::string(dir) + "/s.sock";
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 0;
        try {
            Listener l(path, {}, {});
            struct rlimit rl{64, 64};
            ::setrlimit(RLIMIT_NOFILE, &rl);
            std::vector<int> held;
            for (int fd; (fd = ::open("/dev/null", O_RDONLY)) >= 0;) held.push_back(fd);
            ::close(held.back());
            held.pop_back();
            int c = ::socket(AF_UNIX, SOCK_STREAM, 0);  // the last fd: a client, pending
            sockaddr_un a = stockade::serve::unix_address(path);
            if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) ::_exit(2);
            bool again = false;
            std::string why;
            auto p = l.accept(&again, &why);
            if (p || why.find("EMFILE") == std::string::npos) code = 3;
            char buf[256] = {};
            if (::recv(c, buf, sizeof buf - 1, MSG_DONTWAIT) <= 0 || std::string(buf).find("busy") == std::string::npos)
                code = 4;
            why.clear();
            p = l.accept(&again, &why);
            if (p || again || !why.empty()) code = 5;  // nothing left pending: poll would sleep
        } catch (...) {
            code = 6;
        }
        ::_exit(code);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    ::unlink(path.c_str());
    ::rmdir(dir);
}
