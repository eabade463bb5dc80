// CLOCK_MONOTONIC in nanoseconds: the one clock for timings on both sides of
// the jail (the child reports phase times the supervisor subtracts from).
#pragma once
#include <cstdint>

namespace stockade {

uint64_t monotonic_ns();

}  // namespace stockade
