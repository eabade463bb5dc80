// `stockade doctor`: everything stockade needs on this host, for this
// caller, checked; each failure with the exact fix; then a try-run of the
// jail. Exit 0: the profile runs as intended; 1: it runs degraded (the table
// says what); 2: it cannot run.
#pragma once
#include <string>

#include "profile/loader.hpp"

namespace stockade::doctor {

struct Options {
    bool json = false;
    bool clean = false;  // remove stale cgroups of killed stockades
};

int run(const profile::CommandLine& cl, const Options& opt);

}  // namespace stockade::doctor
