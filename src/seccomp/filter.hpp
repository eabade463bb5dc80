// Compiling a Spec into BPF (in the supervisor, with libseccomp, while the
// jail builds its root) and installing it (in the program, as the very last
// step before execve: one syscall per filter, no library code in the jail).
#pragma once
#include <linux/filter.h>

#include <string>
#include <vector>

#include "seccomp/spec.hpp"

namespace stockade::seccomp {

// One filter. Refusals (the core's and the profile's) are SECCOMP_RET_USER_NOTIF,
// answered by the supervisor; allowed calls never leave the kernel. There is a
// single listener per filter tree, which is why it is one filter and why
// "allow ioctl except TIOCSTI" is spelt as positive rules (see filter.cpp).
struct Compiled {
    std::vector<sock_filter> insns;
};

Compiled compile(const Spec& spec);

// The filter for spec: compiled at build time for the built-in profiles
// (tools/bpfgen.cpp), so the common case costs no libseccomp work per run;
// compiled now otherwise.
Compiled compile_or_precompiled(const Spec& spec);

struct Precompiled {
    const char* canonical;
    const sock_filter* insns;
    size_t count;
};
// Defined by the generated precompiled_filters.cpp in the stockade binary;
// the weak default (none) serves the tests and tools.
const std::vector<Precompiled>& precompiled_filters();

// Wire format for the filter pipe: [u32 n][n insns].
std::string serialize(const Compiled& c);
// Reads one serialized Compiled from fd; throws Error on EOF or a short read.
Compiled read_from(int fd);

// Installs the filter with SECCOMP_FILTER_FLAG_NEW_LISTENER (needs
// no_new_privs) and returns the listener fd; -1 for an empty (disabled) filter.
int install(const Compiled& c);

// For explain: the filter in libseccomp's pseudo-code.

}  // namespace stockade::seccomp
