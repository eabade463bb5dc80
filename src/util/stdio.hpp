// Process hygiene at startup, before stockade opens anything of its own.
#pragma once
#include <vector>

namespace stockade {

// Opens /dev/null on any of fds 0-2 that the caller left closed, so no pipe or
// file of ours can land there and be mistaken for the program's stdio.
void ensure_stdio_open();

// Closes every fd above 2 that the caller leaked into us. Nothing the caller had
// open can then reach the jail by accident, whatever close-on-exec says.
// `keep` lists the fds the caller named on purpose (--result-fd N, or
// --result /dev/fd/N): those stay, close-on-exec.
void close_inherited_fds(const std::vector<int>& keep = {});

}  // namespace stockade
