#include "util/huge_malloc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace stockade {
namespace {

constexpr const char kTunables[] = "GLIBC_TUNABLES=";
constexpr const char kHuge[] = "glibc.malloc.hugetlb=1";
// Set only across our own exec: says the tunable above is ours to take out.
constexpr const char kMark[] = "STOCKADE_HUGE_MALLOC=1";

bool starts(const char* s, const char* prefix) { return std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

bool thp_possible() {
    int fd = ::open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[128] = {};
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    return n > 0 && std::strstr(buf, "[never]") == nullptr;
}

}  // namespace

void exec_with_huge_page_malloc(char** argv, char** envp) {
    std::vector<std::string> env;
    bool have = false;
    for (char** e = envp; e && *e; ++e) {
        if (starts(*e, kMark)) return;  // exec'd already
        if (starts(*e, kTunables)) {
            if (std::strstr(*e, "glibc.malloc.hugetlb")) return;
            env.push_back(std::string(*e) + ":" + kHuge);
            have = true;
        } else {
            env.emplace_back(*e);
        }
    }
    if (!thp_possible()) return;
    if (!have) env.push_back(std::string(kTunables) + kHuge);
    env.emplace_back(kMark);
    std::vector<char*> ep;
    for (auto& s : env) ep.push_back(s.data());
    ep.push_back(nullptr);
    // By its path where it has one: the process's name (comm, what ps and
    // the journal show) is the name of the file exec'd.
    char path[4096];
    ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = '\0';
    ::execve(path, argv, ep.data());
    ::execve("/proc/self/exe", argv, ep.data());  // replaced or deleted since it started
    // No /proc, or no exec: the server runs as it is, at 4 KiB pages.
}

void forget_huge_page_malloc(char** envp) {
    if (!envp) return;
    bool ours = false;
    for (char** e = envp; *e; ++e) ours = ours || std::strcmp(*e, kMark) == 0;
    if (!ours) return;
    char** out = envp;
    for (char** e = envp; *e; ++e) {
        if (std::strcmp(*e, kMark) == 0) continue;
        if (starts(*e, kTunables)) {
            const size_t n = std::strlen(*e), k = std::strlen(kHuge);
            if (n == std::strlen(kTunables) + k) continue;  // the exec made it
            (*e)[n - k - 1] = '\0';                         // the ":" before ours
        }
        *out++ = *e;
    }
    *out = nullptr;
}

}  // namespace stockade
