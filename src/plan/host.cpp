#include "plan/host.hpp"

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
    return h;
}

}  // namespace stockade::plan
