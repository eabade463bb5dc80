// Runs N jails at once from one process and one event loop, the way `serve`
// will: each `-c CODE` argument becomes a Supervisor on the same loop.
// Prints one line per jail ("jail I exit E wall_ms W") and the total time.
//   usage: two-jails CODE [CODE ...]
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "profile/loader.hpp"
#include "plan/host.hpp"
#include "plan/plan.hpp"
#include "util/event_loop.hpp"
#include "supervise/supervisor.hpp"
#include "util/error.hpp"

using namespace stockade;

int main(int argc, char** argv, char** envp) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: two-jails CODE [CODE ...]\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    try {
        const profile::Policy policy = profile::load(profile::CommandLine{});
        const plan::HostFacts host = plan::gather_host_facts(envp);
        std::vector<plan::Plan> plans;
        for (int i = 1; i < argc; ++i) {
            plan::Invocation inv;
            inv.mode = plan::Invocation::Mode::Code;
            inv.code = argv[i];
            plans.push_back(plan::make(policy, inv, host));
        }
        const auto t0 = std::chrono::steady_clock::now();
        EventLoop loop;
        std::vector<std::unique_ptr<supervise::Supervisor>> jails;
        for (const auto& p : plans) {
            jails.push_back(std::make_unique<supervise::Supervisor>(p, loop));
            jails.back()->start();
        }
        std::vector<bool> reported(jails.size(), false);
        size_t left = jails.size();
        while (left) {
            loop.run_once();
            for (size_t i = 0; i < jails.size(); ++i) {
                if (reported[i] || !jails[i]->done()) continue;
                supervise::Outcome o = jails[i]->collect();
                std::printf("jail %zu exit %d signal %d wall_ms %.1f\n", i, o.exit_code, o.signal, o.wall_ms);
                std::fflush(stdout);
                reported[i] = true;
                --left;
            }
        }
        const double total = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::printf("total_ms %.1f\n", total);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "two-jails: %s\n", e.what());
        return 125;
    }
}
