/* A serve template's forks, in C: loaded by the template's python (runner.py,
 * through ctypes) and run in it, with the GIL held and no other thread.
 *
 * Why C: each page a python writes after a fork is copied, and python's own
 * code writes all over (every object it touches has its count written). The
 * template, each fork's init and the jail's setup did that in python, on
 * every task: over half of a forked task's CPU went to it. Here the template
 * waits for requests and forks, and the fork builds the task's jail and
 * becomes its init, touching only this file's few pages; only the program
 * goes back to python (stk_program's caller), with its jail built.
 *
 * The steps are jail/child.cpp's, jail/init.cpp's and jail/program.cpp's, for
 * a jail made inside the template's: see runner.py's _template for what a
 * fork shares with its template and what it gets of its own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* jail_interface.hpp's WireMsg, field for field. */
struct wire {
    uint32_t type;
    int32_t err, status;
    uint32_t pad;
    uint64_t t_ns, user_us, sys_us, max_rss_kb;
    char text[456];
};
_Static_assert(sizeof(struct wire) == 504, "WireMsg's size");
enum { SETUP_ERROR = 1, EXEC_READY = 2, EXIT = 4, PROXY_LISTENER = 7, HELLO = 9 };

enum { MAX_ITEMS = 16, MAX_PATH = 256 };

/* What every fork of this template does the same: set once (stk_configure),
 * from the server's request. */
static struct {
    unsigned uid, gid;
    struct {
        char path[MAX_PATH];
        unsigned long long size;
        unsigned mode;
        int noexec;
    } tmpfs[MAX_ITEMS];
    int ntmpfs;
    char devpts[MAX_ITEMS][MAX_PATH];
    int ndevpts;
    char proc[MAX_PATH];
    int proc_pid, loopback, proxy_port, cpus;
    char hostname[65];
    char cwd[MAX_PATH];
    struct {
        char name[64];
        long value;
    } sysctl[MAX_ITEMS];
    int nsysctl;
    struct {
        int resource;
        long long soft, hard;
    } rlimit[MAX_ITEMS];
    int nrlimit;
    char request[1 << 16];
    size_t request_len;
    int configured;
} conf;

/* The fork's fds, as the server sent them: report, sync, filter, out, err,
 * control. */
static int fds[6];
static pid_t program_pid;

/* The template's pages that a fork's program writes before its answer, as a
 * trial fork of the template found them (stk_learn): each program copies
 * them in one madvise per run of pages, not one page fault per page, which
 * costs three times as much (a fault enters and leaves the kernel; on a
 * virtual machine, through the hypervisor). The same for the pages of code
 * and constants it reads: a fork maps none of a file's pages until they
 * fault. A run's start has bit 0 set for a run to read. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
enum { MAX_RUNS = 4096 };
static struct {
    uint64_t start, len;
} runs[MAX_RUNS];
static int nruns;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* sendmsg(2) only: the one call the filter lets through whatever the profile. */
static int send_wire(int fd, uint32_t type, int err, int status, const char* text, int pass_fd,
                     const struct rusage* ru) {
    struct wire m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.err = err;
    m.status = status;
    m.t_ns = now_ns();
    if (ru) {
        m.user_us = (uint64_t)ru->ru_utime.tv_sec * 1000000u + (uint64_t)ru->ru_utime.tv_usec;
        m.sys_us = (uint64_t)ru->ru_stime.tv_sec * 1000000u + (uint64_t)ru->ru_stime.tv_usec;
        m.max_rss_kb = (uint64_t)ru->ru_maxrss;
    }
    if (text) snprintf(m.text, sizeof m.text, "%s", text);
    struct iovec iov = {&m, sizeof m};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c;
    if (pass_fd >= 0) {
        memset(&c, 0, sizeof c);
        mh.msg_control = c.buf;
        mh.msg_controllen = sizeof c.buf;
        struct cmsghdr* h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &pass_fd, sizeof(int));
    }
    ssize_t n;
    do n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof m ? 0 : -1;
}

/* The one way a fork fails: the step and the error, to the server (as the
 * runner's own failures read: "template fork: ..."), then out. */
static __attribute__((noreturn)) void fail(int report, const char* what, const char* arg) {
    int err = errno;
    char text[400];
    snprintf(text, sizeof text, "template fork: %s%s%s: %s", what, arg ? " " : "", arg ? arg : "", strerror(err));
    send_wire(report, SETUP_ERROR, err, 0, text, -1, NULL);
    _exit(125);
}

static void write_file(int report, const char* path, const char* text, int missing_ok) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        if (missing_ok && errno == ENOENT) return;  // not on this kernel
        fail(report, "open", path);
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) fail(report, "write", path);
    close(fd);
}

/* The fork's own user namespace's limits and quotas (jail/sysctls.hpp,
 * fork_sysctls), and no cgroup namespace beyond the one its init made.
 * /proc/sys/user shows the writer's user namespace and the template's /proc
 * has no /proc/sys: a proc of the fork's own, over `where` for the moment. */
static void limit_namespace(int report, const char* where) {
    if (mount("proc", where, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail(report, "mount proc", where);
    char path[MAX_PATH + 64], value[32];
    for (int i = 0; i < conf.nsysctl + 1; ++i) {
        const char* name = i < conf.nsysctl ? conf.sysctl[i].name : "max_cgroup_namespaces";
        snprintf(path, sizeof path, "%s/sys/user/%s", where, name);
        snprintf(value, sizeof value, "%ld", i < conf.nsysctl ? conf.sysctl[i].value : 0L);
        write_file(report, path, value, 1);
    }
    if (umount2(where, MNT_DETACH) < 0) fail(report, "umount", where);
}

static void drop_capabilities(int report) {
    /* jail/caps.cpp's: the bounding set, the ambient set, the securebits
     * locked, then nothing left; every capability this kernel has (the first
     * it does not know is EINVAL). */
    for (int cap = 0; cap < 64; ++cap)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL) break;
            fail(report, "drop bounding capability", NULL);
        }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) fail(report, "clear ambient capabilities", NULL);
    if (prctl(PR_SET_SECUREBITS, 1 | 2 | 4 | 8 | 32 | 64 | 128, 0, 0, 0) < 0) fail(report, "PR_SET_SECUREBITS", NULL);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) < 0) fail(report, "capset", NULL);
}

static void forward(int sig) {
    int saved = errno;
    if (program_pid > 0) kill(program_pid, sig);
    errno = saved;
}

/* PID 1 of the task's namespaces, once the program is forked: only reaps (as
 * jail/init.cpp does) and tells the server how the program ended. */
static __attribute__((noreturn)) void be_init(int report, pid_t program) {
    program_pid = program;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* Everything but the report socket closed; stdio on /dev/null. */
    if (report > 0) syscall(SYS_close_range, 0, report - 1, 0);
    syscall(SYS_close_range, report + 1, ~0u, 0);
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd)
        if (fd != null) dup2(null, fd);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    const int passed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof passed / sizeof *passed; ++i) sigaction(passed[i], &sa, NULL);
    int status = 0, done = 0;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pid == program) status = st, done = 1;
        if (done) kill(-1, SIGKILL);
    }
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_CHILDREN, &ru);
    send_wire(report, EXIT, 0, status, NULL, -1, &ru);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 0);
}

/* In the clone: PID 1 of the task's new user, mount, UTS, IPC, network and
 * PID namespaces. Builds the jail, says hello, waits for its cgroup, forks
 * the program and becomes the init. Returns in the program only. */
static void build_jail(void) {
    const int report = fds[0], sync = fds[1];
    char text[64];
    write_file(report, "/proc/self/setgroups", "deny", 0);
    snprintf(text, sizeof text, "%u %u 1", conf.uid, conf.uid);
    write_file(report, "/proc/self/uid_map", text, 0);
    snprintf(text, sizeof text, "%u %u 1", conf.gid, conf.gid);
    write_file(report, "/proc/self/gid_map", text, 0);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(report, "mount", "/");
    /* The task's own scratch, /dev/pts and /proc, each over the template's:
     * what came from the template's mount namespace is locked in place there,
     * hidden under the task's, and nothing in it was the task's. */
    const char* where = conf.proc[0] ? conf.proc : conf.ntmpfs ? conf.tmpfs[0].path : NULL;
    for (int i = 0; i < conf.ntmpfs; ++i) {
        char data[96];
        snprintf(data, sizeof data, "mode=%o,size=%llu", conf.tmpfs[i].mode, conf.tmpfs[i].size);
        if (mount("tmpfs", conf.tmpfs[i].path, "tmpfs", MS_NOSUID | MS_NODEV | (conf.tmpfs[i].noexec ? MS_NOEXEC : 0),
                  data) < 0)
            fail(report, "mount", conf.tmpfs[i].path);
    }
    for (int i = 0; i < conf.ndevpts; ++i)
        if (mount("devpts", conf.devpts[i], "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
            fail(report, "mount", conf.devpts[i]);
    if (sethostname(conf.hostname, strlen(conf.hostname)) < 0) fail(report, "sethostname", NULL);
    if (conf.loopback) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        strcpy(ifr.ifr_name, "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail(report, "SIOCGIFFLAGS", "lo");
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail(report, "SIOCSIFFLAGS", "lo");
        close(s);
    }
    /* The server learns the init's pid from this (the kernel adds it), puts
     * it in the task's cgroup, and says so on sync. */
    if (send_wire(report, HELLO, 0, 0, NULL, -1, NULL) < 0) fail(report, "hello", NULL);
    char go = 0;
    ssize_t n;
    do n = read(sync, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || go != '2') _exit(125);
    close(sync);
    /* Re-rooted in the task's cgroup; then no namespace more of any kind. */
    if (unshare(CLONE_NEWCGROUP) < 0) fail(report, "unshare", "CLONE_NEWCGROUP");
    if (where) limit_namespace(report, where);
    if (conf.proc[0]) {
        /* Over the template's, not in its place: the kernel mounts a new proc
         * in a user namespace only where one is already visible. The one
         * below shows the template's PID namespace and is out of reach:
         * nothing in the task can unmount what covers it. */
        if (mount("proc", conf.proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, conf.proc_pid ? "subset=pid" : NULL) < 0)
            fail(report, "mount proc", conf.proc);
    }
    if (conf.proxy_port) {
        /* Made here, in the task's netns; served by the supervisor, outside it. */
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)conf.proxy_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(l, (struct sockaddr*)&a, sizeof a) < 0 || listen(l, 128) < 0)
            fail(report, "proxy listener", NULL);
        if (send_wire(report, PROXY_LISTENER, 0, 0, NULL, l, NULL) < 0) fail(report, "proxy listener", NULL);
        close(l);
    }
    /* The last step that needed a capability: the program starts with none. */
    drop_capabilities(report);
    pid_t program = fork();
    if (program < 0) fail(report, "fork", "the program");
    if (program > 0) be_init(report, program);
    /* Best effort: a run that is not mapped here any more is left to fault. */
    for (int i = 0; i < nruns; ++i)
        madvise((void*)(uintptr_t)(runs[i].start & ~(uint64_t)1), runs[i].len,
                runs[i].start & 1 ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
}

/* One fork of the template. Returns the clone's pid in the template, 0 in
 * the task's program (its jail built, its filter not yet in: stk_program),
 * -1 on failure (reported to the server). Closes the request's fds in the
 * template either way. */
static long fork_task(void) {
    const unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                                CLONE_NEWPID | CLONE_PARENT;
    long pid = syscall(SYS_clone, flags, 0, 0, 0, 0);
    if (pid == 0) {
        build_jail();
        return 0;
    }
    if (pid < 0) {
        char text[200];
        snprintf(text, sizeof text, "template fork: clone: %s", strerror(errno));
        send_wire(fds[0], SETUP_ERROR, errno, 0, text, -1, NULL);
    }
    for (int i = 0; i < 6; ++i) close(fds[i]);
    return pid;
}

/* Reads one line's fields: key, then the rest. */
static int configure_line(char* line) {
    char* rest = strchr(line, ' ');
    if (!rest) return -1;
    *rest++ = '\0';
#define IS(k) (strcmp(line, k) == 0)
    if (IS("uid")) conf.uid = (unsigned)strtoul(rest, NULL, 10);
    else if (IS("gid")) conf.gid = (unsigned)strtoul(rest, NULL, 10);
    else if (IS("tmpfs")) {
        if (conf.ntmpfs == MAX_ITEMS) return -1;
        int noexec, off = 0;
        unsigned mode;
        unsigned long long size;
        if (sscanf(rest, "%llu %o %d %n", &size, &mode, &noexec, &off) != 3 || !off) return -1;
        if (strlen(rest + off) >= MAX_PATH) return -1;
        strcpy(conf.tmpfs[conf.ntmpfs].path, rest + off);
        conf.tmpfs[conf.ntmpfs].size = size;
        conf.tmpfs[conf.ntmpfs].mode = mode;
        conf.tmpfs[conf.ntmpfs++].noexec = noexec;
    } else if (IS("devpts")) {
        if (conf.ndevpts == MAX_ITEMS || strlen(rest) >= MAX_PATH) return -1;
        strcpy(conf.devpts[conf.ndevpts++], rest);
    } else if (IS("proc")) {
        if (strlen(rest) >= MAX_PATH) return -1;
        strcpy(conf.proc, rest);
    } else if (IS("proc_pid")) conf.proc_pid = atoi(rest);
    else if (IS("loopback")) conf.loopback = atoi(rest);
    else if (IS("proxy_port")) conf.proxy_port = atoi(rest);
    else if (IS("cpus")) conf.cpus = atoi(rest);
    else if (IS("hostname")) {
        if (strlen(rest) >= sizeof conf.hostname) return -1;
        strcpy(conf.hostname, rest);
    } else if (IS("cwd")) {
        if (strlen(rest) >= MAX_PATH) return -1;
        strcpy(conf.cwd, rest);
    } else if (IS("sysctl")) {
        if (conf.nsysctl == MAX_ITEMS) return -1;
        int off = 0;
        long value;
        if (sscanf(rest, "%ld %n", &value, &off) != 1 || !off || strlen(rest + off) >= 64) return -1;
        strcpy(conf.sysctl[conf.nsysctl].name, rest + off);
        conf.sysctl[conf.nsysctl++].value = value;
    } else if (IS("rlimit")) {
        if (conf.nrlimit == MAX_ITEMS) return -1;
        int res;
        long long soft, hard;
        if (sscanf(rest, "%d %lld %lld", &res, &soft, &hard) != 3) return -1;
        conf.rlimit[conf.nrlimit].resource = res;
        conf.rlimit[conf.nrlimit].soft = soft;
        conf.rlimit[conf.nrlimit++].hard = hard;
    } else
        return -1;
#undef IS
    return 0;
}

/* The template's settings for every fork of `request` (the server's request,
 * as received), one "key value" per line: see runner.py's _forkd_conf.
 * Returns 0, or -1 on anything it does not take (the template then forks
 * through python). */
EXPORT int stk_configure(const char* text, const char* request, size_t request_len) {
    memset(&conf, 0, sizeof conf);
    if (request_len > sizeof conf.request) return -1;
    char* copy = strdup(text);
    if (!copy) return -1;
    int rc = 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (configure_line(line) < 0) rc = -1;
    free(copy);
    if (rc == 0) {
        memcpy(conf.request, request, request_len);
        conf.request_len = request_len;
        conf.configured = 1;
    }
    return rc;
}

/* The template's loop: a request and its six fds from the server, then a
 * fork. Returns 0 in a fork's program; or, in the template, -1 when the
 * server has gone, or the length of a request (in buf, its fds in out_fds)
 * this configuration is not for, for python to make one. */
EXPORT long stk_serve(int ctl, char* buf, size_t cap, int* out_fds) {
    for (;;) {
        struct iovec iov = {buf, cap};
        struct msghdr mh;
        union {
            struct cmsghdr h;
            char b[CMSG_SPACE(6 * sizeof(int))];
        } c;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = c.b;
        mh.msg_controllen = sizeof c.b;
        ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        int got[6], ngot = 0;
        for (struct cmsghdr* h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
            if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
            int k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k; ++i) {
                int fd;
                memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
                if (ngot < 6)
                    got[ngot++] = fd;
                else
                    close(fd);
            }
        }
        if (ngot != 6 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            for (int i = 0; i < ngot; ++i) close(got[i]);
            continue;
        }
        memcpy(fds, got, sizeof fds);
        if (!conf.configured || (size_t)n != conf.request_len || memcmp(buf, conf.request, (size_t)n) != 0) {
            memcpy(out_fds, fds, sizeof fds);
            return n;
        }
        if (fork_task() == 0) return 0;
    }
}

/* A fork for the request python has just configured for (its fds as
 * stk_serve returned them): as stk_serve's own. */
EXPORT long stk_fork(const int* in_fds) {
    memcpy(fds, in_fds, sizeof fds);
    return fork_task();
}

static void read_all(int fd, void* buf, size_t len, int report) {
    char* p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EPIPE;
            fail(report, "seccomp filter from the supervisor", NULL);
        }
        p += n;
        len -= (size_t)n;
    }
}

/* The program's last steps (jail/program.cpp's, up to where it would
 * execve), after python's own after-fork steps: its exec rules (a Landlock
 * ruleset, or -1), its fds in place (1, 2: output; 3: report; 5: control),
 * its session, limits and filter. Returns 0, with the task's filter in. */
EXPORT int stk_program(int ruleset) {
    const int report = fds[0];
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(report, "PR_SET_NO_NEW_PRIVS", NULL);
    if (ruleset >= 0) {
        if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) fail(report, "landlock_restrict_self", NULL);
        close(ruleset);
    }
    /* Through fds above 10 first, so that no move lands on another. */
    const int from[5] = {fds[3], fds[4], fds[0], fds[2], fds[5]};
    const int to[5] = {1, 2, 3, 4, 5};
    int high[5];
    for (int i = 0; i < 5; ++i) {
        high[i] = from[i] >= 0 ? fcntl(from[i], F_DUPFD_CLOEXEC, 10) : -1;
        if (from[i] >= 0 && high[i] < 0) fail(report, "dup", NULL);
    }
    for (int i = 0; i < 5; ++i)
        if (high[i] >= 0 && dup3(high[i], to[i], to[i] == 3 || to[i] == 4 ? O_CLOEXEC : 0) < 0)
            fail(report, "dup3", NULL);
    syscall(SYS_close_range, 6, ~0u, 0);
    fds[0] = 3;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    umask(022);
    if (chdir(conf.cwd) < 0) fail(3, "chdir", conf.cwd);
    if (conf.cpus > 0) {
        cpu_set_t have, want;
        CPU_ZERO(&want);
        if (sched_getaffinity(0, sizeof have, &have) == 0 && conf.cpus < CPU_COUNT(&have)) {
            int left = conf.cpus;
            for (int cpu = 0; cpu < CPU_SETSIZE && left; ++cpu)
                if (CPU_ISSET(cpu, &have)) CPU_SET(cpu, &want), --left;
            sched_setaffinity(0, sizeof want, &want);
        }
    }
    uint32_t count;
    read_all(4, &count, sizeof count, 3);
    if (count == 0 || count > BPF_MAXINSNS) {
        errno = EINVAL;
        fail(3, "seccomp filter from the supervisor", NULL);
    }
    struct sock_filter* insns = malloc(count * sizeof *insns);
    if (!insns) fail(3, "seccomp filter", NULL);
    read_all(4, insns, count * sizeof *insns, 3);
    close(4);
    for (int i = 0; i < conf.nrlimit; ++i) {
        /* Never above a hard limit the template already has (-1: none). */
        struct rlimit cur, want;
        if (getrlimit(conf.rlimit[i].resource, &cur) < 0) fail(3, "getrlimit", NULL);
        rlim_t soft = conf.rlimit[i].soft < 0 ? RLIM_INFINITY : (rlim_t)conf.rlimit[i].soft;
        rlim_t hard = conf.rlimit[i].hard < 0 ? RLIM_INFINITY : (rlim_t)conf.rlimit[i].hard;
        if (cur.rlim_max != RLIM_INFINITY && (hard == RLIM_INFINITY || hard > cur.rlim_max)) hard = cur.rlim_max;
        if (hard != RLIM_INFINITY && (soft == RLIM_INFINITY || soft > hard)) soft = hard;
        want.rlim_cur = soft;
        want.rlim_max = hard;
        if (setrlimit(conf.rlimit[i].resource, &want) < 0) fail(3, "setrlimit", NULL);
    }
    struct sock_fprog prog = {(unsigned short)count, insns};
    int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    free(insns);
    if (listener < 0) fail(3, "seccomp", NULL);
    send_wire(3, EXEC_READY, 0, 0, NULL, listener, NULL);
    close(3);
    close(listener);
    fds[0] = -1;
    return 0;
}

/* Where a fork's program reports a failure of its own: the report socket,
 * wherever stk_program has moved it (-1 once the filter is in). */
EXPORT int stk_report_fd(void) { return fds[0]; }

/* A trial fork of the template (a plain fork: no jail, no namespaces): 0 in
 * the child, which runs trusted code only, then stk_learn. */
EXPORT long stk_trial(void) { return fork(); }

/* In the trial fork, after the steps a program takes: the runs of pages it
 * has written since the fork (private writable pages only it maps now), and
 * of the file pages it has read (a fork starts with none mapped), as
 * (start | read, length) pairs of uint64 to `out`. Returns the number of
 * runs, or -1. */
EXPORT int stk_learn(int out) {
    FILE* maps = fopen("/proc/self/maps", "re");
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (!maps || pm < 0) {
        if (maps) fclose(maps);
        if (pm >= 0) close(pm);
        return -1;
    }
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    char line[512], perms[8];
    unsigned long lo, hi, off, inode;
    unsigned dmaj, dmin;
    int count = 0;
    uint64_t run[2] = {0, 0};
    while (fgets(line, sizeof line, maps)) {
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &dmaj, &dmin, &inode) != 7) continue;
        const int written = strcmp(perms, "rw-p") == 0;
        const int read = inode != 0 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
        if (!written && !read) continue;
        for (uint64_t a = lo; a < hi;) {
            uint64_t ent[512];
            size_t want = (size_t)((hi - a) / page);
            if (want > 512) want = 512;
            ssize_t n = pread(pm, ent, want * sizeof *ent, (off_t)(a / page * sizeof *ent));
            if (n <= 0) break;
            for (size_t i = 0; i < (size_t)n / sizeof *ent; ++i, a += page) {
                /* Present (bit 63); written: mapped by this process alone (bit 56). */
                if (!((ent[i] >> 63) & 1) || (written && !((ent[i] >> 56) & 1))) continue;
                if (run[1] && (run[0] & ~(uint64_t)1) + run[1] == a && (run[0] & 1) == (uint64_t)read) {
                    run[1] += page;
                    continue;
                }
                if (run[1] && write(out, run, sizeof run) == (ssize_t)sizeof run) ++count;
                run[0] = a | (uint64_t)read;
                run[1] = page;
            }
        }
    }
    if (run[1] && write(out, run, sizeof run) == (ssize_t)sizeof run) ++count;
    fclose(maps);
    close(pm);
    return count;
}

/* The runs stk_learn found, for every fork from now on. */
EXPORT void stk_prefault(const uint64_t* pairs, int n) {
    nruns = 0;
    for (int i = 0; i < n && nruns < MAX_RUNS; ++i) {
        runs[nruns].start = pairs[2 * i];
        runs[nruns].len = pairs[2 * i + 1];
        ++nruns;
    }
}

/* The template's code and constants on huge pages, copied once. A fork maps
 * a file's pages one at a time, as it touches them: a page fault each and,
 * on a virtual machine that shadows page tables, an exit to the hypervisor
 * (5-6 us a page on the project's VMs, where a python fork reads hundreds of
 * them before its task is done). A fork inherits an anonymous huge page
 * whole and reads it for nothing more; on bare metal it saves the faults
 * and TLB misses.
 *
 * Which: the 2 MiB blocks that lie wholly inside the contiguous, readable,
 * never written, private mappings of one file that has code (the executable and
 * its libraries; not data files, whose later changes a copy would not see).
 * A block gets execute if any of it had it: a header or constants beside
 * the code become executable, which gives a task nothing (it may map
 * executable memory of its own). At most max_blocks, and never more than 16
 * (32 MiB, shared with the forks; -1: 16); where the kernel gives no huge
 * page, a block stays as it was. Returns the number of blocks moved. */
enum { HUGE = 2 << 20, MAX_MAPS = 1024, MAX_HUGE_BLOCKS = 16 };

static int is_huge(uintptr_t at) {
    FILE* f = fopen("/proc/self/smaps", "re");
    if (!f) return 0;
    char line[512];
    int in = 0, huge = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            in = lo <= at && at < hi;
            continue;
        }
        unsigned long kb;
        if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) {
            huge = kb * 1024 >= HUGE;
            break;
        }
    }
    fclose(f);
    return huge;
}

static int hugify_block(uintptr_t at, int prot) {
    char* raw = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return -1;
    char* block = (char*)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (block > raw) munmap(raw, (size_t)(block - raw));
    if (block + HUGE < raw + 2 * HUGE) munmap(block + HUGE, (size_t)(raw + 2 * HUGE - (block + HUGE)));
    if (madvise(block, HUGE, MADV_HUGEPAGE) < 0) goto undo;
    memcpy(block, (const void*)at, HUGE);
    if (!is_huge((uintptr_t)block)) goto undo;
    if (mprotect(block, HUGE, prot) < 0) goto undo;
    /* One call replaces the file's pages with the copy; code running from
     * the block (libc's own mremap, say) goes on in the same bytes. */
    if (mremap(block, HUGE, HUGE, MREMAP_MAYMOVE | MREMAP_FIXED, (void*)at) == MAP_FAILED) goto undo;
    return 0;
undo:
    munmap(block, HUGE);
    return -1;
}

EXPORT int stk_hugify(int max_blocks) {
    if (max_blocks < 0 || max_blocks > MAX_HUGE_BLOCKS) max_blocks = MAX_HUGE_BLOCKS;
    static struct {
        uintptr_t lo, hi;
        unsigned long dev, inode;
        int keep, x;  // keep: written, shared or unreadable (a gap between a library's segments)
    } m[MAX_MAPS];
    int n = 0;
    FILE* maps = fopen("/proc/self/maps", "re");
    if (!maps) return -1;
    char line[512], perms[8];
    while (n < MAX_MAPS && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, off, inode;
        unsigned dmaj, dmin;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &dmaj, &dmin, &inode) != 7) continue;
        m[n].lo = lo, m[n].hi = hi, m[n].dev = ((unsigned long)dmaj << 20) | dmin, m[n].inode = inode;
        m[n].keep = perms[0] != 'r' || perms[1] == 'w' || perms[3] != 'p';
        m[n].x = perms[2] == 'x';
        ++n;
    }
    fclose(maps);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    int moved = 0;
    for (int i = 0; i < n && moved < max_blocks;) {
        if (m[i].inode == 0 || m[i].keep) {
            ++i;
            continue;
        }
        /* One file's run of contiguous, readable, never-written mappings: [i, j). */
        int j = i + 1, code = m[i].x;
        while (j < n && m[j].lo == m[j - 1].hi && m[j].inode == m[i].inode && m[j].dev == m[i].dev && !m[j].keep)
            code |= m[j++].x;
        if (!code) {
            i = j;
            continue;
        }
        const uintptr_t first = (m[i].lo + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
        for (uintptr_t b = first; b + HUGE <= m[j - 1].hi && moved < max_blocks; b += HUGE) {
            int prot = PROT_READ;
            for (int k = i; k < j; ++k)
                if (m[k].x && m[k].lo < b + HUGE && b < m[k].hi) prot |= PROT_EXEC;
            if (hugify_block(b, prot) == 0) ++moved;
        }
        i = j;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return moved;
}
