// The fixed numbers of the jail's last steps, which the seccomp filter is
// built around: kept apart from jail_interface.hpp (which carries the Plan)
// so seccomp/ needs nothing from plan/.
#pragma once
#include <signal.h>

namespace stockade::jail {

// The program's last steps: the report socket sits at fd 3 and the filter pipe
// at fd 4, both close-on-exec. The filter lets sendmsg through on fd 3 only.
constexpr int kReportFd = 3;
constexpr int kFilterFd = 4;
// A warm jail's program (serve's runner) keeps its control socket to the
// server here, across exec; every other jail has nothing above fd 2.
constexpr int kControlFd = 5;

// What the program's last steps call after its filter is installed, allowed
// whatever the profile says (sendmsg only on kReportFd).
inline constexpr const char* kLastStepSyscalls[] = {"execve", "close", "exit_group", "exit"};

// Signals from the caller that the supervisor passes to the init, and the init
// to the program.
inline constexpr int kRelayedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

}  // namespace stockade::jail
