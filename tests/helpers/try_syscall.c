/* try-syscall: make one syscall the way an attacker would, print the result.
 *   try-syscall NAME      prints "NAME ok RET" or "NAME err ERRNAME"
 * Used by tests/integration/test_seccomp.py inside and outside the jail, so a
 * test can tell the filter's answer from the kernel's own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static long child_exit(long pid) {
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, __WALL);
    return pid > 0 ? 0 : pid;
}

static long run(const char* n) {
    char buf[16];
    if (!strcmp(n, "ptrace")) return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
    if (!strcmp(n, "process_vm_readv")) {
        struct iovec local = {buf, 8}, remote = {(void*)n, 8};
        return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
    }
    if (!strcmp(n, "kcmp")) return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0);
    if (!strcmp(n, "pidfd_getfd")) {
        int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        return syscall(SYS_pidfd_getfd, pfd, 0, 0);
    }
    if (!strcmp(n, "keyctl")) return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1);
    if (!strcmp(n, "add_key")) return syscall(SYS_add_key, "user", "stockade-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (!strcmp(n, "bpf")) {
        uint32_t attr[32] = {2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1};
        return syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
    }
    if (!strcmp(n, "perf_event_open")) {
        struct perf_event_attr a = {.type = PERF_TYPE_SOFTWARE, .size = sizeof a, .config = PERF_COUNT_SW_TASK_CLOCK,
                                    .exclude_kernel = 1, .exclude_hv = 1};
        return syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    }
    if (!strcmp(n, "userfaultfd")) return syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
    if (!strcmp(n, "io_uring_setup")) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        return syscall(SYS_io_uring_setup, 4, &p);
    }
    if (!strcmp(n, "unshare")) return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(n, "setns")) return syscall(SYS_setns, open("/proc/self/ns/uts", O_RDONLY), CLONE_NEWUTS);
    if (!strcmp(n, "clone_newuser")) return child_exit(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(n, "clone_plain")) return child_exit(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(n, "clone3_newuser")) {
        struct clone_args a;
        memset(&a, 0, sizeof a);
        a.flags = CLONE_NEWUSER;
        a.exit_signal = SIGCHLD;
        return child_exit(syscall(SYS_clone3, &a, sizeof a));
    }
    if (!strcmp(n, "mount")) return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
    if (!strcmp(n, "umount2")) return syscall(SYS_umount2, "/tmp", MNT_DETACH);
    if (!strcmp(n, "fsopen")) return syscall(SYS_fsopen, "tmpfs", 0);
    if (!strcmp(n, "open_tree")) return syscall(SYS_open_tree, AT_FDCWD, "/tmp", 1 /* OPEN_TREE_CLONE */);
    if (!strcmp(n, "chroot")) return syscall(SYS_chroot, "/");
    if (!strcmp(n, "pivot_root")) return syscall(SYS_pivot_root, ".", ".");
    if (!strcmp(n, "init_module")) return syscall(SYS_init_module, NULL, 0, "");
    if (!strcmp(n, "reboot")) return syscall(SYS_reboot, 0, 0, 0, NULL);  /* bad magic: EINVAL if let through */
    if (!strcmp(n, "syslog")) return syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, 0, 0);
    if (!strcmp(n, "adjtimex")) {
        struct timex t;
        memset(&t, 0, sizeof t);
        return syscall(SYS_adjtimex, &t);  /* modes = 0: a read-only query */
    }
    if (!strcmp(n, "clock_settime")) {
        struct timespec ts = {0, 0};
        return syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts);  /* EINVAL if let through */
    }
    if (!strcmp(n, "personality")) return syscall(SYS_personality, ADDR_NO_RANDOMIZE);
    if (!strcmp(n, "personality_query")) return syscall(SYS_personality, 0xffffffffUL);
    if (!strcmp(n, "socket_vsock")) return syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(n, "socket_netlink")) return syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0);
    if (!strcmp(n, "socket_netlink_highbits")) return syscall(SYS_socket, (1UL << 32) | AF_NETLINK, SOCK_RAW, 0);
    if (!strcmp(n, "socket_packet")) return syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0);
    if (!strcmp(n, "socket_inet")) return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    if (!strcmp(n, "tiocsti") || !strcmp(n, "tiocsti_highbits")) {
        /* A terminal of our own that we control: TIOCSTI works on it outside a jail. */
        int master, slave;
        if (openpty(&master, &slave, NULL, NULL, NULL) < 0) return -1;
        setsid();
        ioctl(slave, TIOCSCTTY, 0);
        unsigned long req = TIOCSTI | (!strcmp(n, "tiocsti_highbits") ? (1UL << 32) : 0);
        return syscall(SYS_ioctl, slave, req, "x");
    }
    if (!strcmp(n, "tiocsti_stdin") || !strcmp(n, "tiocsti_stdin_highbits")) {
        /* The terminal on stdin, made our controlling one if we can. */
        setsid();
        ioctl(0, TIOCSCTTY, 0);
        unsigned long req = TIOCSTI | (!strcmp(n, "tiocsti_stdin_highbits") ? (1UL << 32) : 0);
        return syscall(SYS_ioctl, 0, req, "x");
    }
    if (!strcmp(n, "set_mempolicy")) return syscall(SYS_set_mempolicy, 0 /* MPOL_DEFAULT */, NULL, 0);
    if (!strcmp(n, "ioctl_fionread")) {
        int fds[2], avail = 0;
        if (pipe(fds) < 0) return -1;
        return syscall(SYS_ioctl, fds[0], FIONREAD, &avail);
    }
    if (!strcmp(n, "name_to_handle_at")) {
        struct { unsigned int bytes; int type; unsigned char h[128]; } fh = {128, 0, {0}};
        int mount_id;
        return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &fh, &mount_id, 0);
    }
    if (!strcmp(n, "int80_getpid")) {
        /* The i386 ABI from a 64-bit process: the filter must not be fooled by it. */
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory", "r8", "r9", "r10", "r11");
        return ret;
    }
    if (!strcmp(n, "x32_getpid")) return syscall(0x40000000 | SYS_getpid);
    fprintf(stderr, "try-syscall: unknown probe %s\n", n);
    exit(2);
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        errno = 0;
        long r = run(argv[i]);
        if (r < 0 && errno) printf("%s err %s\n", argv[i], strerrorname_np(errno));
        else if (r < 0 && r > -4096) printf("%s err %s\n", argv[i], strerrorname_np((int)-r));  /* int 0x80 returns -errno */
        else printf("%s ok %ld\n", argv[i], r);
        fflush(stdout);
    }
    return 0;
}
