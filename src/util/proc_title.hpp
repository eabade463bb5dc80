// The block of memory holding argv and the environment that the kernel gave us.
// A forked child keeps a copy, and /proc/PID/environ and /proc/PID/cmdline read
// it straight from memory, so the jail's init wipes it before the program runs.
#pragma once

namespace stockade {

void remember_process_block(int argc, char** argv, char** envp);
// Zeroes the block and writes `title` at its start (what /proc/PID/cmdline shows).
void scrub_process_block(const char* title) noexcept;

}  // namespace stockade
