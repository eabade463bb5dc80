#include "plan/host.hpp"

#include <sys/stat.h>
#include <unistd.h>

namespace stockade::plan {

HostFacts gather_host_facts(char** envp) {
    HostFacts h;
    h.euid = ::geteuid();
    h.egid = ::getegid();
    for (char** e = envp; e && *e; ++e) {
        std::string kv(*e);
        size_t eq = kv.find('=');
        if (eq != std::string::npos) h.env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
    }
    for (int fd = 0; fd < 3; ++fd)
        if (::isatty(fd)) h.stdio_ttys |= 1u << fd;
    for (const char* p : kHostDataPaths) {
        struct stat st;
        if (::lstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) h.present.emplace_back(p);
    }
    return h;
}

}  // namespace stockade::plan
