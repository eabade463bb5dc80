#include "supervise/template_fork.hpp"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "jail/rlimits.hpp"
#include "jail/sysctls.hpp"
#include "jail_interface.hpp"
#include "util/error.hpp"

namespace stockade::supervise {

using plan::MountOp;

std::string template_request(const plan::Plan& plan, bool cgroup, bool exec_rules) {
    nlohmann::json r = {{"tmpfs", nlohmann::json::array()}, {"devpts", nlohmann::json::array()}};
    for (const MountOp& m : plan.mounts) {
        // Read-only tmpfs (the root's, /dev) hold only what the plan put there
        // and stay shared; every writable one is the task's own.
        if (m.kind == MountOp::Kind::Tmpfs && m.writable) r["tmpfs"].push_back({m.dst, m.size, m.mode, m.noexec});
        if (m.kind == MountOp::Kind::Devpts) r["devpts"].push_back(m.dst);
        if (m.kind == MountOp::Kind::Proc) r["proc"] = m.dst;
    }
    r["proc_pid"] = plan.proc == profile::ProcMode::Pid;
    r["hostname"] = plan.hostname;
    r["loopback"] = plan.loopback_up;
    r["proxy_port"] = plan.proxy_port;
    r["cwd"] = plan.cwd;
    r["program"] = plan.argv.at(0);
    if (exec_rules)
        r["exec_rules"] = plan.exec_rules;
    else
        r["exec_rules"] = nullptr;
    r["rlimits"] = nlohmann::json::array();
    for (const auto& l : jail::rlimits_for(plan.limits, cgroup)) {
        auto v = [](unsigned long long x) { return x == RLIM_INFINITY ? -1ll : static_cast<long long>(x); };
        r["rlimits"].push_back({l.resource, v(l.soft), v(l.hard)});
    }
    // Read once: the host's quotas the template jails got their shares of.
    static const auto sysctls = jail::fork_sysctls();
    r["sysctls"] = sysctls;
    r["cpus"] = !cgroup && plan.limits.cpus > 0 ? plan.limits.cpus : 0.0;
    return r.dump() + "\n";
}

void send_fork_request(int template_fd, const std::string& request, const TemplateFds& fds, int report) {
    // The hello's sender, as the kernel gives it: only the task's init holds
    // the other end by then.
    int one = 1;
    check(::setsockopt(report, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), "setsockopt", "SO_PASSCRED");
    const int passed[6] = {fds.report, fds.sync, fds.filter, fds.out, fds.err, fds.control};
    struct iovec iov {
        const_cast<char*>(request.data()), request.size()
    };
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof passed)];
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof passed);
    std::memcpy(CMSG_DATA(c), passed, sizeof passed);
    ssize_t n;
    do n = ::sendmsg(template_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(request.size())) throw_sys("sendmsg", "the template's fork request");
}

pid_t receive_hello(int report, UniqueFd& pidfd) {
    jail::WireMsg m;
    struct iovec riov {
        &m, sizeof m
    };
    struct msghdr rh {};
    rh.msg_iov = &riov;
    rh.msg_iovlen = 1;
    alignas(struct cmsghdr) char rc_buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(4 * sizeof(int))];
    rh.msg_control = rc_buf;
    rh.msg_controllen = sizeof rc_buf;
    ssize_t got;
    do got = ::recvmsg(report, &rh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (got < 0 && errno == EINTR);
    if (got < 0 && errno == EAGAIN) return 0;
    if (got <= 0) throw Error("template fork: the task's init ended before it said hello");
    pid_t pid = 0;
    for (struct cmsghdr* h = CMSG_FIRSTHDR(&rh); h; h = CMSG_NXTHDR(&rh, h)) {
        if (h->cmsg_level != SOL_SOCKET) continue;
        if (h->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            std::memcpy(&cred, CMSG_DATA(h), sizeof cred);
            pid = cred.pid;
        } else if (h->cmsg_type == SCM_RIGHTS) {
            int k = static_cast<int>((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k && i < 4; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
                ::close(fd);
            }
        }
    }
    if (got != sizeof m) throw Error("template fork: a short message from the task's init");
    m.text[sizeof m.text - 1] = '\0';
    if (m.type == jail::WireMsg::SetupError) throw Error(m.text, m.err);
    if (m.type != jail::WireMsg::Hello) return 0;
    if (pid <= 0) throw Error("template fork: the hello came without its sender");
    int zero = 0;
    check(::setsockopt(report, SOL_SOCKET, SO_PASSCRED, &zero, sizeof zero), "setsockopt", "SO_PASSCRED");
    pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) throw_sys("pidfd_open", "the task's init (pid " + std::to_string(pid) + ")");
    return pid;
}

}  // namespace stockade::supervise
