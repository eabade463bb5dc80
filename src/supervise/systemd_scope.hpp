// For an unprivileged caller with no writable cgroup: ask the caller's
// systemd user manager, over D-Bus (sd-bus), for a transient scope with
// Delegate=yes holding this process, as podman and crun do with their
// systemd cgroup driver. The jails' cgroups are then made below it, with
// real memory, pids and CPU limits and no root. Only this process moves.
#pragma once
#include <string>

namespace stockade::supervise {

// True once this process is in a delegated scope of its own (asked once per
// process); false with why_not saying what was missing.
bool enter_delegated_scope(std::string& why_not);

}  // namespace stockade::supervise
