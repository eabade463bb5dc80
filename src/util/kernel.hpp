// What this kernel offers, asked without side effects (for the supervisor's
// report of what degraded, and for the jail's last steps).
#pragma once

namespace stockade {

// The Landlock ABI version the kernel offers (0: none).
int landlock_abi();

// Whether this kernel has MFD_NOEXEC_SEAL (6.3 and later; vm.memfd_noexec
// came with it).
bool host_has_memfd_noexec();

}  // namespace stockade
