#include "sandbox/host.hpp"

#include <unistd.h>

#include <climits>

namespace stockade::sandbox {

HostFacts gather_host_facts(char** envp) {
    HostFacts h;
    h.euid = ::geteuid();
    h.egid = ::getegid();
    for (char** e = envp; e && *e; ++e) {
        std::string kv(*e);
        size_t eq = kv.find('=');
        if (eq != std::string::npos) h.env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
    }
    for (int fd = 0; fd < 3; ++fd) {
        char name[PATH_MAX];
        if (::isatty(fd) && ::ttyname_r(fd, name, sizeof name) == 0) {
            std::string n(name);
            bool seen = false;
            for (auto& t : h.stdio_ttys) seen |= t == n;
            if (!seen) h.stdio_ttys.push_back(n);
        }
    }
    return h;
}

}  // namespace stockade::sandbox
