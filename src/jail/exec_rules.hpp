// exec_allow, enforced by the kernel for every execve in the jail (not only
// the first): a Landlock ruleset that handles only the execute right, with
// rules for the allowed programs and the ELF interpreters they name. A file
// in no rule cannot be executed: a copy in /tmp, a memfd, /bin/sh under strict.
#pragma once
#include <string>
#include <vector>

namespace stockade::jail {

// Applies the rules to the calling process (no_new_privs must be set).
// `program` is the path about to be executed. Throws Error.
void restrict_exec(const std::vector<std::string>& exec_allow, const std::string& program);

// The PT_INTERP of an ELF file ("" for a static one, a script, or on error).
std::string elf_interpreter(const std::string& path);

}  // namespace stockade::jail
