// What a jail holds in memory, seen from the host: the PSS (proportional set
// size) of its init and every process below it. PSS splits each shared page
// between the processes that map it, so the figures of several warm jails add
// up to what they cost together.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace stockade::supervise {

struct TreePss {
    uint64_t bytes = 0;
    // False when the walk stopped at the deadline: a jail can make each read
    // slow (many mappings in many processes), and the server's loop waits on it.
    bool complete = true;
};
// nullopt when the root is gone. What cannot be read (the init, to an
// unprivileged server) counts as zero; so does a process that ends meanwhile.
// Stops between two reads once monotonic_ns() passes deadline_ns.
std::optional<TreePss> tree_pss_bytes(pid_t root, uint64_t deadline_ns);
// One process's own PSS.
std::optional<uint64_t> process_pss_bytes(pid_t pid);
// A serve template's own PSS: its init and its python, not the jails forked
// from it (which its init reaps, so they are its children too, one PID
// namespace deeper).
std::optional<uint64_t> template_pss_bytes(pid_t init);

}  // namespace stockade::supervise
