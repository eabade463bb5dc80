// The validated, immutable result of loading a profile: plain data, no TOML.
// Everything downstream (plan, explain, launch) reads only this.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stockade::profile {

enum class NetMode { None, Loopback, Proxy, Host };
enum class ProcMode { Pid, Full };

struct Bind {
    std::string src;  // host path, absolute
    std::string dst;  // jail path, absolute
    bool writable = false;
    std::string origin;  // "profile.toml:12:3" or "--ro": where the user said it

    bool operator==(const Bind&) const = default;
};

struct Symlink {
    std::string path;    // jail path
    std::string target;  // link text, as written

    bool operator==(const Symlink&) const = default;
};

// [seccomp] and [unsafe], validated but not yet resolved to numbers.
struct SeccompPolicy {
    enum class Default { Errno, Kill, Log } default_action = Default::Errno;
    int default_errno = 1;  // EPERM
    int deny_errno = 1;
    std::vector<std::string> allow;  // syscall names and @groups
    std::vector<std::string> deny;
    std::vector<int> socket_families;       // empty: any family the core allows
    std::vector<std::string> unsafe_allow;  // core syscalls lifted by [unsafe]
    bool disabled = false;                  // [unsafe] disable_seccomp = true
    std::vector<std::string> notes;         // names skipped on this architecture

    bool operator==(const SeccompPolicy&) const = default;
};

// [limits]; 0 means "no limit".
struct Limits {
    uint64_t wall_ms = 0;
    uint64_t grace_ms = 1000;  // between SIGTERM and SIGKILL when the wall clock runs out
    uint64_t cpu_ms = 0;
    uint64_t memory = 0;
    uint64_t pids = 0;
    double cpus = 0;
    uint64_t file_size = 0;
    uint64_t open_files = 0;
    uint64_t stack = 0;
    uint64_t output = 0;       // stdout + stderr bytes
    bool output_kill = false;  // kill the jail at the cap, rather than only truncate
    bool require_cgroup = false;

    bool operator==(const Limits&) const = default;
};

struct Policy {
    std::string name;  // built-in name or file path of the top profile
    std::string description;

    // [run]
    std::string python = "/usr/bin/python3";
    std::vector<std::string> python_args;
    std::vector<std::string> exec_allow;  // glob patterns for the program path
    std::string cwd = "/work";
    std::string hostname = "stockade";

    // [user]
    uint32_t uid = 1000;
    uint32_t gid = 1000;
    std::string user_name = "sandbox";
    std::string home = "/home/sandbox";
    uint32_t root_host_uid = 65534;  // what the jail's uid is on the host when stockade runs as root
    uint32_t root_host_gid = 65534;

    // [filesystem]
    std::vector<Bind> binds;
    std::vector<Symlink> symlinks;
    ProcMode proc = ProcMode::Pid;
    uint64_t tmp_size = 128ull << 20;
    uint64_t home_size = 128ull << 20;
    uint64_t shm_size = 64ull << 20;
    bool noexec_writable = true;  // noexec on /tmp, HOME, /dev/shm and --rw binds

    // [env]
    std::vector<std::pair<std::string, std::string>> env;
    std::vector<std::string> env_pass;

    // [network]
    NetMode net = NetMode::Loopback;
    std::vector<std::string> net_allow;                          // proxy destinations, validated
    std::vector<std::pair<std::string, std::string>> net_hosts;  // name -> IP pins for the proxy
    uint16_t proxy_port = 3128;
    std::vector<std::string> net_nameservers;  // the proxy's DNS servers; empty: resolv.conf
    bool unsafe_host_network = false;
    bool unsafe_root_host_ids = false;  // [unsafe] root_host_ids: any host id for a root-run jail

    // [namespaces]
    bool time_ns = false;

    SeccompPolicy seccomp;
    Limits limits;

    bool operator==(const Policy&) const = default;
};

const char* to_string(NetMode m);
const char* to_string(ProcMode m);

}  // namespace stockade::profile
