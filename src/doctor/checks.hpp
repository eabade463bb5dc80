// The host checks behind `stockade doctor`, each one small and without side
// effects on the host (but --clean's removal of stale cgroups).
#pragma once
#include <string>
#include <vector>

namespace stockade::doctor {

struct Check {
    enum class State { Ok, Info, Warn, Fail };
    std::string name;
    State state = State::Ok;
    std::string detail;  // what was found
    std::string fix;     // for Warn and Fail: the exact fix
};

const char* to_string(Check::State s);

void check_kernel(std::vector<Check>& out);
void check_userns_sysctls(std::vector<Check>& out);
void check_cgroups(std::vector<Check>& out, bool clean);
void check_container(std::vector<Check>& out);

}  // namespace stockade::doctor
