// Big buffers on huge pages, for the long-lived servers (serve, mcp).
//
// A request of megabytes is read, parsed and encoded again for its jail:
// each pass writes megabytes of fresh memory. glibc maps a buffer that big of
// its own and the kernel faults it in 4 KiB at a time; on a VM that shadows
// page tables each fault is an exit as well. glibc puts such mappings on
// transparent huge pages (a fault per 2 MiB) only if its tunable
// glibc.malloc.hugetlb=1 was in the environment at start, and nothing sets it
// later: so a server execs itself once with it.
#pragma once

namespace stockade {

// Execs /proc/self/exe with the same argv and the tunable added, unless the
// environment names that tunable already (the user's choice stands), THP is
// off, or it did so before. Returns only if it did not exec. Call it first,
// before anything is opened.
void exec_with_huge_page_malloc(char** argv, char** envp);

// In the exec'd process: takes what the exec added back out of envp, in
// place, so that what the server starts sees the environment it was given.
void forget_huge_page_malloc(char** envp);

}  // namespace stockade
