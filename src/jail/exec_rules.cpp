#include "jail/exec_rules.hpp"

#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace stockade::jail {

std::string elf_interpreter(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    Elf64_Ehdr eh;
    if (::pread(fd.get(), &eh, sizeof eh, 0) != sizeof eh || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
        return {};
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        if (::pread(fd.get(), &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) != sizeof ph) return {};
        if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > 4096) continue;
        std::string interp(ph.p_filesz, '\0');
        if (::pread(fd.get(), interp.data(), interp.size(), static_cast<off_t>(ph.p_offset)) !=
            static_cast<ssize_t>(interp.size()))
            return {};
        interp.resize(std::strlen(interp.c_str()));
        return interp;
    }
    return {};
}

namespace {

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// interps: where to note the ELF interpreter of a file rule (nullptr: the
// rule is an interpreter itself). Each file is read once.
void add_rule(int ruleset, const std::string& path, std::set<std::string>* interps, std::set<std::string>& read) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) return;  // a pattern may name what this jail does not have
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) return;
    struct landlock_path_beneath_attr attr {};
    attr.allowed_access = LANDLOCK_ACCESS_FS_EXECUTE;
    attr.parent_fd = fd.get();
    if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0) < 0)
        throw_sys("landlock_add_rule", path);
    if (interps && S_ISREG(st.st_mode) && read.insert(path).second)
        if (std::string i = elf_interpreter(path); !i.empty()) interps->insert(i);
}

}  // namespace

void restrict_exec(const std::vector<std::string>& exec_allow, const std::string& program) {
    struct landlock_ruleset_attr ra {};
    // REFER too, granted everywhere below: a ruleset that does not handle it
    // forbids moving or linking a file into another directory (EXDEV), which
    // would break shutil.move, pip and any rename between directories.
    ra.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_REFER;
    UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0)));
    if (!ruleset) throw_sys("landlock_create_ruleset", "(exec_allow)");
    {
        UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        struct landlock_path_beneath_attr attr {};
        attr.allowed_access = LANDLOCK_ACCESS_FS_REFER;
        attr.parent_fd = root.get();
        if (!root || ::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &attr, 0) < 0)
            throw_sys("landlock_add_rule", "/ (refer)");
    }
    std::set<std::string> interps, read;
    std::vector<std::string> allowed = exec_allow;
    if (allowed.empty()) allowed.push_back(program);  // the profile's own python, and only it
    for (const auto& pat : allowed) {
        // "DIR/*" is the directory itself (its subdirectories too, which is as
        // far as a path-beneath rule goes); other patterns are expanded here,
        // inside the jail, to the files they name now.
        if (pat.size() > 2 && pat.compare(pat.size() - 2, 2, "/*") == 0 && !has_glob(pat.substr(0, pat.size() - 2))) {
            add_rule(ruleset.get(), pat.substr(0, pat.size() - 2), &interps, read);
            continue;
        }
        if (!has_glob(pat)) {
            add_rule(ruleset.get(), pat, &interps, read);
            continue;
        }
        glob_t g{};
        if (::glob(pat.c_str(), GLOB_NOSORT, nullptr, &g) == 0)
            for (size_t i = 0; i < g.gl_pathc; ++i) add_rule(ruleset.get(), g.gl_pathv[i], &interps, read);
        ::globfree(&g);
    }
    // The program's ELF interpreter is opened for execution by the kernel:
    // it needs the right too, and so do those of the other allowed files.
    if (read.insert(program).second)
        if (std::string i = elf_interpreter(program); !i.empty()) interps.insert(i);
    for (const auto& i : interps) add_rule(ruleset.get(), i, nullptr, read);
    if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) < 0)
        throw_sys("landlock_restrict_self", "(exec_allow)");
}

}  // namespace stockade::jail
