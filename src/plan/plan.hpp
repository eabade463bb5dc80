// Policy + what to run + facts about the caller -> a Plan: every mount, id,
// variable and argument resolved and checked before any namespace exists.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "profile/policy.hpp"
#include "net/allowlist.hpp"
#include "plan/seccomp_spec.hpp"
#include "seccomp/spec.hpp"

namespace stockade::plan {

struct MountOp {
    enum class Kind {
        Bind,     // src (host) -> dst, recursive
        Tmpfs,    // fresh tmpfs at dst, size bytes
        Dir,      // mkdir on the root tmpfs
        File,     // a file on the root tmpfs holding `content`
        Script,   // a file on the root tmpfs copied from the caller's script fd
        Symlink,  // dst -> src (link text)
        Device,   // bind of a host device node (dev allowed on it, unlike everything else)
        Proc,     // fresh procfs for the jail's PID namespace
        Devpts,   // a devpts instance of the jail's own (newinstance) at dst
    };
    Kind kind = Kind::Dir;
    std::string src;
    std::string dst;
    bool writable = false;
    bool noexec = false;
    uint64_t size = 0;
    unsigned mode = 0755;
    std::string content;
    std::string origin;  // where the user asked for it, for error messages
};

struct Invocation {
    enum class Mode { Script, Code, Exec, Repl } mode = Mode::Script;  // Repl: python on the jail's terminal
    std::string script;                                                // host path (Script)
    std::string code;                                                  // (Code)
    std::vector<std::string> args;  // script/code arguments, or the whole argv (Exec)
    bool timings = false;           // report each setup step's time (--timings)
    bool learn = false;             // --learn: record the syscalls used, refuse only the core
    bool writable_work = false;     // serve: /work is a tmpfs of the jail's own, for the task's files
    bool terminal_raw = false;  // --raw-terminal: the jail's escape sequences reach the caller's terminal unfiltered
    // (Code) When set, the code is a read-only file at this path of the jail's
    // root, and python runs that file: the host's `ps` then shows its name,
    // not the whole source (serve's runner).
    std::string code_file;
    // Read-only files written beside code_file (path, content: its bytecode),
    // and what python runs when not code_file itself (its directory, which
    // holds it as __main__.py).
    std::vector<std::pair<std::string, std::string>> code_extras;
    std::string code_run;
    // serve: the program is a template (see Plan::template_program).
    bool template_program = false;
};

// What plan() needs to know about the caller; passed in so plan stays pure.
struct HostFacts {
    uint32_t euid = 0, egid = 0;
    std::map<std::string, std::string> env;  // the caller's environment
    unsigned stdio_ttys = 0;                 // bit i: fd i is a terminal
    // Which of kHostDataPaths this host has (plan binds only those).
    std::vector<std::string> present;
};

// Host data that Python's standard library, pip and plotting read, bound
// read-only where present: service and protocol names, Debian's matplotlibrc
// (matplotlib will not import without it), fontconfig's configuration and its
// cache (else every jail rescans the fonts) in every mode; the CA
// certificates where the network reaches past the jail (proxy, host).
inline constexpr const char* kHostDataPaths[] = {"/etc/services", "/etc/protocols",        "/etc/matplotlibrc",
                                                 "/etc/fonts",    "/var/cache/fontconfig", "/etc/ssl/certs"};

struct Plan {
    std::vector<MountOp> mounts;  // in the order they are made
    std::vector<std::string> argv;
    std::vector<std::string> envp;        // "KEY=VALUE"
    std::vector<std::string> exec_allow;  // empty: argv[0] is the profile's python, always allowed
    // What any execve in the jail may run (Landlock): run.exec_allow and the
    // profile's python, whatever started first.
    std::vector<std::string> exec_rules;
    std::string path_var;  // the jail's PATH, for finding argv[0]
    std::string cwd;
    std::string hostname;
    // Bit i: the caller's fd i is a terminal. Those fds get the slave of a
    // pseudo-terminal of the jail's own, relayed by the supervisor; the
    // caller's terminal itself never enters the jail.
    unsigned terminal = 0;
    bool terminal_raw = false;            // see Invocation
    uint32_t uid = 0, gid = 0;            // inside
    uint32_t host_uid = 0, host_gid = 0;  // what they are outside
    bool clear_host_groups = false;       // root's supplementary groups must not follow it in
    bool loopback_up = false;
    bool net_ns = true;                // false only for [unsafe] host networking
    uint16_t proxy_port = 0;           // the jail listens here for the supervisor's proxy (proxy mode)
    std::vector<net::Rule> net_rules;  // [network] allow, parsed once here
    std::vector<std::pair<std::string, std::string>> net_hosts;
    std::vector<std::string> net_nameservers;
    bool time_ns = false;
    profile::ProcMode proc = profile::ProcMode::Pid;
    std::string script_host;  // host path of the script to copy in, if any
    bool timings = false;     // report each setup step's time (for bench/ and --timings)
    // serve's template: a python that forks each pool jail (serve/pool.hpp,
    // serve/runner.py). Like any program it has no capability left; unlike
    // one, it has no filter or Landlock rules of its own, and its user
    // namespace may hold more: each fork makes a user namespace of its own,
    // then its other namespaces and mounts in it, then installs both. It
    // runs trusted code only, and no task can reach it.
    bool template_program = false;
    seccomp::Spec seccomp;
    profile::Limits limits;
    // What the supervisor decides at run time (the cgroup, what degraded) is
    // not here: the Plan is finished when plan() returns.
};

Plan make(const profile::Policy& policy, const Invocation& inv, const HostFacts& host);

// The host-side checks plan() cannot do purely: every bind source exists, is not a
// symlink, and is a directory or a regular file (or a device for Device ops).
// Throws Error naming the profile line or flag that asked for the path.
void check_sources(const Plan& p);

// The writable tmpfs mounts (/tmp, HOME, /dev/shm, serve's /work) share the
// memory limit: their sizes are scaled down together so that their sum is at
// most `memory` bytes (0: no limit). With a cgroup their pages are charged to
// the jail's memory.max as well; without one, nothing else would bound them.
void bound_scratch(std::vector<MountOp>& mounts, uint64_t memory);

// Depth of an absolute path: "/" is 0, "/a/b" is 2.
size_t path_depth(const std::string& p);

}  // namespace stockade::plan
