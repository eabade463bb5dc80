#include "util/container.hpp"

#include <unistd.h>

#include <cstdlib>

#include "util/fd.hpp"

namespace stockade {
std::string container_engine() {
    if (::access("/.dockerenv", F_OK) == 0) return "docker";
    if (::access("/run/.containerenv", F_OK) == 0) return "podman";
    if (std::getenv("KUBERNETES_SERVICE_HOST")) return "kubernetes";
    const std::string c1 = read_small_file("/proc/1/cgroup");
    if (c1.find("kubepods") != std::string::npos) return "kubernetes";
    if (c1.find("docker") != std::string::npos) return "docker";
    if (c1.find("/lxc") != std::string::npos) return "lxc";
    return {};
}

std::string container_seccomp_fix(const std::string& engine) {
    if (engine.empty()) return {};
    if (engine == "kubernetes")
        return "securityContext.seccompProfile: {type: Localhost, localhostProfile: stockade.json} (the file is "
               "/usr/share/stockade/docker-seccomp.json from the package, on each node), and procMount: Unmasked";
    return engine +
           " run --security-opt seccomp=/usr/share/stockade/docker-seccomp.json --security-opt "
           "systempaths=unconfined ... (the profile ships in the package and in the source tree as "
           "packaging/docker/seccomp.json; not --privileged)";
}

std::string container_proc_fix(const std::string& engine) {
    if (engine.empty()) return {};
    if (engine == "kubernetes") return "securityContext.procMount: Unmasked";
    return engine + " run --security-opt systempaths=unconfined (with the seccomp profile: " +
           "--security-opt seccomp=/usr/share/stockade/docker-seccomp.json)";
}

}  // namespace stockade
