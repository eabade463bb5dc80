#include "plan/seccomp_spec.hpp"

#include <sys/socket.h>

#include <algorithm>

#include "seccomp/catalog.hpp"

namespace stockade::plan {

seccomp::Spec seccomp_spec(const profile::SeccompPolicy& p) {
    using namespace seccomp;
    Spec s;
    using D = profile::SeccompPolicy::Default;
    s.default_action = p.default_action == D::Kill  ? DefaultAction::Kill
                       : p.default_action == D::Log ? DefaultAction::Log
                                                    : DefaultAction::Errno;
    s.default_errno = p.default_errno;
    s.deny_errno = p.deny_errno;
    s.socket_families = p.socket_families;
    s.unsafe = p.unsafe_allow;
    s.enabled = !p.disabled;
    auto expand = [](const std::vector<std::string>& names, std::vector<int>& out) {
        auto add = [&](const std::string& n) {
            int nr = resolve(n);
            if (nr >= 0) out.push_back(nr);
        };
        for (const auto& n : names) {
            if (const Group* g = find_group(n)) {
                for (const char* m : g->syscalls) add(m);
            } else {
                add(n);
            }
        }
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
    };
    expand(p.allow, s.allow);
    expand(p.deny, s.deny);
    // The core's refusals by number: a few dozen lookups, where naming each
    // allowed number back was a scan of libseccomp's table per syscall.
    std::vector<int> refused;
    for (const auto& r : core())
        if (int nr = resolve(r.syscall); nr >= 0 && core_refuses_always(r.syscall, s.unsafe)) refused.push_back(nr);
    std::sort(refused.begin(), refused.end());
    std::erase_if(s.allow, [&](int nr) {
        return std::binary_search(s.deny.begin(), s.deny.end(), nr) ||
               std::binary_search(refused.begin(), refused.end(), nr);
    });
    return s;
}

__attribute__((weak)) const seccomp::Spec* precomputed_spec(const profile::Policy&) { return nullptr; }

seccomp::Spec seccomp_spec_for(const profile::Policy& p) {
    if (const seccomp::Spec* ready = precomputed_spec(p)) return *ready;
    return seccomp_spec_computed(p);
}

seccomp::Spec seccomp_spec_computed(const profile::Policy& p) {
    seccomp::Spec s = seccomp_spec(p.seccomp);
    if (p.net == profile::NetMode::None) s.socket_families = {AF_UNIX};  // not even an inet socket to bind
    return s;
}

}  // namespace stockade::plan
