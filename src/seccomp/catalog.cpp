#include "seccomp/catalog.hpp"

#include <seccomp.h>

#include <cerrno>
#include <cstdlib>

namespace stockade::seccomp {

// Derived from strace runs of CPython 3.11 on Debian 12: interpreter start-up,
// tests/integration/probes/compat.py (numpy, sqlite3, ssl/hashlib, threading,
// multiprocessing fork and spawn, asyncio, subprocess, mmap, tempfile) and a
// selection of CPython's own test suite, then sorted into groups by purpose.
// Nothing here is in the hard-deny core below.
const std::vector<Group>& groups() {
    static const std::vector<Group> all = {
        {"@basic-io",
         "read, write and manage open file descriptors",
         {"read",     "write",  "readv",       "writev",         "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
          "pwritev2", "close",  "close_range", "lseek",          "dup",     "dup2",     "dup3",   "fcntl",   "ioctl",
          "sendfile", "splice", "tee",         "copy_file_range"}},
        {"@file-io",
         "open, inspect and change files and directories",
         {"open",
          "openat",
          "openat2",
          "creat",
          "stat",
          "fstat",
          "lstat",
          "newfstatat",
          "statx",
          "access",
          "faccessat",
          "faccessat2",
          "readlink",
          "readlinkat",
          "getdents",
          "getdents64",
          "getcwd",
          "chdir",
          "fchdir",
          "mkdir",
          "mkdirat",
          "rmdir",
          "unlink",
          "unlinkat",
          "rename",
          "renameat",
          "renameat2",
          "link",
          "linkat",
          "symlink",
          "symlinkat",
          "chmod",
          "fchmod",
          "fchmodat",
          "chown",
          "fchown",
          "lchown",
          "fchownat",
          "truncate",
          "ftruncate",
          "fallocate",
          "fsync",
          "fdatasync",
          "sync",
          "syncfs",
          "sync_file_range",
          "utime",
          "utimes",
          "utimensat",
          "futimesat",
          "statfs",
          "fstatfs",
          "flock",
          "fadvise64",
          "readahead",
          "umask",
          "mknod",
          "mknodat",
          "getxattr",
          "lgetxattr",
          "fgetxattr",
          "listxattr",
          "llistxattr",
          "flistxattr",
          "setxattr",
          "lsetxattr",
          "fsetxattr",
          "removexattr",
          "lremovexattr",
          "fremovexattr",
          "inotify_init",
          "inotify_init1",
          "inotify_add_watch",
          "inotify_rm_watch"}},
        {"@memory",
         "map, protect and advise memory",
         {"brk",          "mmap",          "munmap",     "mprotect",  "mremap",        "madvise",        "msync",
          "mincore",      "mlock",         "mlock2",     "munlock",   "mlockall",      "munlockall",     "membarrier",
          "memfd_create", "get_mempolicy", "pkey_alloc", "pkey_free", "pkey_mprotect", "process_madvise"}},
        {"@process",
         "threads and processes: create, wait, identify, schedule, limit",
         {"clone",
          "fork",
          "vfork",
          "execve",
          "execveat",
          "exit",
          "exit_group",
          "wait4",
          "waitid",
          "getpid",
          "getppid",
          "gettid",
          "getuid",
          "geteuid",
          "getgid",
          "getegid",
          "getresuid",
          "getresgid",
          "getgroups",
          "setuid",
          "setgid",
          "setreuid",
          "setregid",
          "setresuid",
          "setresgid",
          "setgroups",
          "setfsuid",
          "setfsgid",
          "setsid",
          "getsid",
          "setpgid",
          "getpgid",
          "getpgrp",
          "prctl",
          "arch_prctl",
          "set_tid_address",
          "set_robust_list",
          "get_robust_list",
          "rseq",
          "futex",
          "futex_waitv",
          "sched_yield",
          "sched_getaffinity",
          "sched_setaffinity",
          "sched_getparam",
          "sched_setparam",
          "sched_getscheduler",
          "sched_setscheduler",
          "sched_get_priority_max",
          "sched_get_priority_min",
          "sched_rr_get_interval",
          "sched_getattr",
          "sched_setattr",
          "getpriority",
          "setpriority",
          "getrlimit",
          "setrlimit",
          "prlimit64",
          "getrusage",
          "times",
          "capget",
          "pidfd_open",
          "pidfd_send_signal",
          "ioprio_get",
          "ioprio_set",
          "landlock_create_ruleset",
          "landlock_add_rule",
          "landlock_restrict_self",
          "personality"}},
        {"@signal",
         "signals and their handlers",
         {"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending", "rt_sigtimedwait",
          "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "kill", "tkill", "tgkill", "signalfd", "signalfd4",
          "pause", "restart_syscall"}},
        {"@time",
         "clocks, sleeps and timers (reading time, never setting it)",
         {"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "alarm", "getitimer",
          "setitimer", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
          "timerfd_create", "timerfd_settime", "timerfd_gettime"}},
        {"@ipc",
         "waiting and talking between threads and processes",
         {"pipe",          "pipe2",           "poll",       "ppoll",        "select",       "pselect6", "epoll_create",
          "epoll_create1", "epoll_ctl",       "epoll_wait", "epoll_pwait",  "epoll_pwait2", "eventfd",  "eventfd2",
          "shmget",        "shmat",           "shmdt",      "shmctl",       "semget",       "semop",    "semtimedop",
          "semctl",        "msgget",          "msgsnd",     "msgrcv",       "msgctl",       "mq_open",  "mq_unlink",
          "mq_timedsend",  "mq_timedreceive", "mq_notify",  "mq_getsetattr"}},
        {"@network",
         "sockets (families are checked by the core: no netlink, packet or vsock)",
         {"socket", "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
          "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt"}},
        {"@system-info", "facts about the system and randomness", {"uname", "sysinfo", "getrandom", "getcpu"}},
    };
    return all;
}

namespace {
// @python is the union of the groups above: what the default profile allows.
const Group& python_group() {
    static const Group g = [] {
        Group p{"@python", "everything CPython and common C extensions need (all groups above)", {}};
        for (const auto& grp : groups())
            for (const char* s : grp.syscalls) p.syscalls.push_back(s);
        return p;
    }();
    return g;
}
}  // namespace

const Group* find_group(const std::string& name) {
    if (name == "@python") return &python_group();
    for (const auto& g : groups())
        if (name == g.name) return &g;
    return nullptr;
}

const std::vector<CoreRule>& core() {
    static const std::vector<CoreRule> all = {
        {"ptrace", EPERM, "inspecting or controlling other processes"},
        {"process_vm_readv", EPERM, "reading other processes' memory"},
        {"process_vm_writev", EPERM, "writing other processes' memory"},
        {"kcmp", EPERM, "comparing kernel objects of other processes"},
        {"pidfd_getfd", EPERM, "stealing other processes' file descriptors"},
        {"keyctl", EPERM, "kernel keyrings (not namespaced)"},
        {"add_key", EPERM, "kernel keyrings (not namespaced)"},
        {"request_key", EPERM, "kernel keyrings (not namespaced)"},
        {"bpf", EPERM, "eBPF: a large kernel attack surface"},
        {"perf_event_open", EPERM, "performance counters: side channels and kernel attack surface"},
        {"userfaultfd", EPERM, "stalls kernel code at will (a common exploit primitive)"},
        {"io_uring_setup", ENOSYS, "io_uring bypasses seccomp for the operations it performs"},
        {"io_uring_enter", ENOSYS, "io_uring bypasses seccomp for the operations it performs"},
        {"io_uring_register", ENOSYS, "io_uring bypasses seccomp for the operations it performs"},
        {"unshare", EPERM, "new namespaces"},
        {"setns", EPERM, "joining other namespaces"},
        {"clone", EPERM, "only with a namespace flag (CLONE_NEW*); plain clone is allowed"},
        {"clone3", ENOSYS, "its flags are behind a pointer the filter cannot read; glibc falls back to clone"},
        {"mount", EPERM, "mounting"},
        {"umount2", EPERM, "unmounting"},
        {"pivot_root", EPERM, "changing the root"},
        {"chroot", EPERM, "changing the root"},
        {"fsopen", EPERM, "the new mount API"},
        {"fsconfig", EPERM, "the new mount API"},
        {"fsmount", EPERM, "the new mount API"},
        {"fspick", EPERM, "the new mount API"},
        {"move_mount", EPERM, "the new mount API"},
        {"open_tree", EPERM, "the new mount API"},
        {"mount_setattr", EPERM, "the new mount API"},
        {"kexec_load", EPERM, "replacing the kernel"},
        {"kexec_file_load", EPERM, "replacing the kernel"},
        {"init_module", EPERM, "loading kernel modules"},
        {"finit_module", EPERM, "loading kernel modules"},
        {"delete_module", EPERM, "unloading kernel modules"},
        {"reboot", EPERM, "rebooting"},
        {"swapon", EPERM, "swap"},
        {"swapoff", EPERM, "swap"},
        {"acct", EPERM, "process accounting"},
        {"syslog", EPERM, "the kernel log"},
        {"settimeofday", EPERM, "setting the clock"},
        {"clock_settime", EPERM, "setting the clock"},
        {"clock_adjtime", EPERM, "setting the clock"},
        {"adjtimex", EPERM, "setting the clock"},
        {"personality", EPERM, "only personalities other than the default (e.g. ADDR_NO_RANDOMIZE)"},
        {"socket", EAFNOSUPPORT,
         "only families other than AF_UNIX, AF_INET and AF_INET6 (netlink, packet, vsock, alg, ...)"},
        {"socketpair", EAFNOSUPPORT, "only families other than AF_UNIX"},
        {"ioctl", EPERM, "only TIOCSTI and TIOCLINUX (terminal input injection), on the low 32 bits"},
        {"open_by_handle_at", EPERM, "opening files by handle escapes mount namespaces"},
        {"name_to_handle_at", EPERM, "file handles (paired with open_by_handle_at)"},
        {"iopl", EPERM, "raw I/O port access"},
        {"ioperm", EPERM, "raw I/O port access"},
        {"quotactl", EPERM, "filesystem quotas"},
        {"lookup_dcookie", EPERM, "kernel profiling"},
        {"vhangup", EPERM, "hanging up terminals"},
        {"uselib", EPERM, "obsolete library loading"},
        // A filter of the program's own could answer a refused call with ERRNO,
        // which outranks stockade's notification: no record, and no kill in kill mode.
        {"seccomp", EPERM, "stacking another seccomp filter (it could pre-empt stockade's answers)"},
        {"prctl", EPERM, "only PR_SET_SECCOMP (stacking another seccomp filter)"},
        {"prlimit64", EPERM, "only on pid 1, the jail's init"},
    };
    return all;
}

const CoreRule* find_core(const std::string& syscall) {
    for (const auto& r : core())
        if (syscall == r.syscall) return &r;
    return nullptr;
}

const CoreRule* core_rule(const std::string& syscall, const std::vector<std::string>& unsafe) {
    for (const auto& u : unsafe)
        if (u == syscall) return nullptr;
    return find_core(syscall);
}

bool core_is_conditional(const std::string& syscall) {
    for (const char* c : {"clone", "socket", "socketpair", "ioctl", "personality", "prctl", "prlimit64"})
        if (syscall == c) return true;
    return false;
}

int resolve(const std::string& name) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    return nr == __NR_SCMP_ERROR || nr < 0 ? -1 : nr;
}

std::string name_of(int nr) {
    char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    std::string s = n ? n : "";
    free(n);
    return s;
}

bool known_elsewhere(const std::string& name) {
    for (uint32_t arch : std::initializer_list<uint32_t>{SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32, SCMP_ARCH_ARM,
                                                         SCMP_ARCH_AARCH64, SCMP_ARCH_PPC64LE, SCMP_ARCH_S390X,
                                                         SCMP_ARCH_RISCV64, SCMP_ARCH_MIPS64})
        if (seccomp_syscall_resolve_name_arch(arch, name.c_str()) != __NR_SCMP_ERROR) return true;
    return false;
}

const std::vector<std::string>& native_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (int nr = 0; nr < 1024; ++nr) {
            std::string n = name_of(nr);
            if (!n.empty()) v.push_back(n);
        }
        return v;
    }();
    return names;
}

const char* native_arch_name() {
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "native";
#endif
}

}  // namespace stockade::seccomp
