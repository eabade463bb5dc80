// Whether this process runs in a container, and which engine: the errors a
// container's defaults cause (its seccomp profile refusing namespaces, its
// masked /proc) are then named with the engine's own fix, not blamed on the
// kernel. Shared by the supervisor, the jail's child and doctor.
#pragma once
#include <string>

namespace stockade {

// "docker", "podman", "kubernetes", "lxc", or empty.
std::string container_engine();

// The engine's fix for its seccomp profile refusing namespaces, and for a
// masked /proc (empty outside a container).
std::string container_seccomp_fix(const std::string& engine);
std::string container_proc_fix(const std::string& engine);

}  // namespace stockade
