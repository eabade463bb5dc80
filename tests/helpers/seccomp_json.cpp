// Runs a command under a Docker-format seccomp profile, enforced as Docker
// enforces it (libseccomp: the listed names allowed, anything else refused
// with the profile's errno), without needing dockerd.
// usage: seccomp-json PROFILE.json [--without NAME,...] -- ARGV...
#include <seccomp.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: seccomp-json PROFILE.json [--without NAME,...] -- ARGV...\n";
        return 2;
    }
    std::ifstream f(argv[1]);
    nlohmann::json doc = nlohmann::json::parse(f);
    std::set<std::string> without;
    int i = 2;
    if (std::strcmp(argv[i], "--without") == 0) {
        std::stringstream ss(argv[i + 1]);
        for (std::string n; std::getline(ss, n, ',');) without.insert(n);
        i += 2;
    }
    if (std::strcmp(argv[i], "--") != 0) return 2;
    ++i;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(doc.value("defaultErrnoRet", 1)));
    for (const auto& rule : doc["syscalls"]) {
        if (rule.value("action", "") != "SCMP_ACT_ALLOW") continue;
        for (const auto& n : rule["names"]) {
            if (without.count(n.get<std::string>())) continue;
            int nr = seccomp_syscall_resolve_name(n.get<std::string>().c_str());
            if (nr != __NR_SCMP_ERROR) seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        }
    }
    if (seccomp_load(ctx) != 0) {
        std::cerr << "seccomp-json: seccomp_load failed\n";
        return 2;
    }
    execv(argv[i], argv + i);
    std::cerr << "seccomp-json: exec " << argv[i] << ": " << std::strerror(errno) << "\n";
    return 127;
}
