#include "doctor/doctor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "doctor/checks.hpp"
#include "plan/host.hpp"
#include "plan/plan.hpp"
#include "profile/loader.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"

extern char** environ;

namespace stockade::doctor {
namespace {

using State = Check::State;
using nlohmann::json;

void check_profile(const profile::CommandLine& cl, std::vector<Check>& out) {
    profile::Policy p;
    try {
        p = profile::load(cl);
    } catch (const profile::ProfileError& e) {
        out.push_back(
            {"profile", State::Fail, e.diagnostics.front().str(), "stockade check PROFILE prints every error"});
        return;
    }
    out.push_back({"profile", State::Ok, p.name, ""});
    struct stat st;
    if (::stat(p.python.c_str(), &st) < 0 || !(st.st_mode & S_IXOTH))
        out.push_back({"python", State::Fail, p.python + " is missing or not executable",
                       "apt-get install python3 (or set run.python in the profile)"});
    else
        out.push_back({"python", State::Ok, p.python, ""});
    try {
        plan::Invocation inv;
        inv.mode = plan::Invocation::Mode::Code;
        inv.code = "pass";
        plan::check_sources(plan::make(p, inv, plan::gather_host_facts(environ)));
        out.push_back({"binds", State::Ok, std::to_string(p.binds.size()) + " bind sources present", ""});
    } catch (const Error& e) {
        out.push_back(
            {"binds", State::Fail, e.what(), "create the path, or remove the bind from the profile or command line"});
    }
}

// The jail itself, started as a run would start it: this binary, the profile.
void try_run(const profile::CommandLine& cl, std::vector<Check>& out) {
    char exe[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    char dir[] = "/tmp/stockade-doctor-XXXXXX";
    if (!::mkdtemp(dir)) return;
    const std::string result = std::string(dir) + "/result.json", log = std::string(dir) + "/log";
    std::vector<std::string> args = {exe, "run", "-q", "--result", result};
    if (!cl.profile.empty()) args.insert(args.end(), {"-p", cl.profile});
    for (const auto& s : cl.sets) args.insert(args.end(), {"--set", s});
    for (const auto& x : cl.ro) args.insert(args.end(), {"--ro", x});
    for (const auto& x : cl.rw) args.insert(args.end(), {"--rw", x});
    args.insert(args.end(), {"-c", "import os; print('uid', os.getuid(), 'pid', os.getpid())"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) ::dup2(fd, 1), ::dup2(fd, 2);
        if (null >= 0) ::dup2(null, 0);
        ::execv(exe, argv.data());
        ::_exit(kExitNotFound);
    }
    int st = 0;
    if (pid > 0) ::waitpid(pid, &st, 0);
    std::ifstream rf(result), lf(log);
    std::stringstream rs, ls;
    rs << rf.rdbuf();
    ls << lf.rdbuf();
    json r = json::parse(rs.str(), nullptr, false);
    std::string said = ls.str();
    ::unlink(result.c_str());
    ::unlink(log.c_str());
    ::rmdir(dir);
    if (!r.is_object()) {
        out.push_back({"try-run", State::Fail, "no result: " + said, "see the checks above"});
        return;
    }
    std::string status = r.value("status", "?");
    // The jail's own user (the profile's [user] uid) as its program's pid 2,
    // under its init: whatever uid the profile names.
    std::string want = "uid 1000 pid 2";
    try {
        want = "uid " + std::to_string(profile::load(cl).uid) + " pid 2";
    } catch (const std::exception&) {}
    if (status != "ok" || said.find(want) == std::string::npos) {
        std::string msg = r.contains("message") && r["message"].is_string() ? r["message"].get<std::string>() : said;
        out.push_back({"try-run", State::Fail, status + ": " + msg, "see the checks above"});
        return;
    }
    std::string degraded;
    if (r.contains("degraded") && r["degraded"].is_array())
        for (const auto& d : r["degraded"]) {
            std::string limit = d.value("limit", "");
            if (limit == "memfd_noexec") continue;  // a fact of older kernels, not a setting to fix
            degraded += (degraded.empty() ? "" : "; ") + limit + ": " + d.value("reason", "");
        }
    if (degraded.empty())
        out.push_back(
            {"try-run", State::Ok,
             "the jail ran (namespaces, root, filter" +
                 std::string(r.value("cgroup", json()).is_string() ? ", cgroup " + r["cgroup"].get<std::string>()
                                                                   : "") +
                 ")",
             ""});
    else
        out.push_back({"try-run", State::Warn, "the jail ran, degraded: " + degraded, "see the cgroup check above"});
}

}  // namespace

int run(const profile::CommandLine& cl, const Options& opt) {
    std::vector<Check> checks;
    check_kernel(checks);
    check_userns_sysctls(checks);
    check_cgroups(checks, opt.clean);
    check_container(checks);
    check_profile(cl, checks);
    try_run(cl, checks);

    int code = 0;
    for (const auto& c : checks) {
        if (c.name == "try-run")
            code = c.state == State::Fail ? 2 : c.state == State::Warn ? 1 : code;
        else if (c.state == State::Fail)
            code = std::max(code, 2);
    }
    if (opt.json) {
        json arr = json::array();
        for (const auto& c : checks)
            arr.push_back({{"check", c.name},
                           {"state", to_string(c.state)},
                           {"detail", c.detail},
                           {"fix", c.fix.empty() ? json(nullptr) : json(c.fix)}});
        std::cout << json{{"checks", arr},
                          {"verdict", code == 0   ? "ok"
                                      : code == 1 ? "degraded"
                                                  : "cannot_run"},
                          {"exit", code}}
                         .dump(2)
                  << "\n";
        return code;
    }
    size_t w = 0;
    for (const auto& c : checks) w = std::max(w, c.name.size());
    for (const auto& c : checks) {
        std::printf("%-*s  %-4s  %s\n", static_cast<int>(w), c.name.c_str(), to_string(c.state), c.detail.c_str());
        if (!c.fix.empty()) std::printf("%-*s        fix: %s\n", static_cast<int>(w), "", c.fix.c_str());
    }
    std::printf("\n%s\n", code == 0   ? "stockade will run as intended."
                          : code == 1 ? "stockade will run, degraded (see warn above)."
                                      : "stockade cannot run here (see FAIL above).");
    return code;
}

}  // namespace stockade::doctor
