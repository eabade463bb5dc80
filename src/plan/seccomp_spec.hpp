// The profile's syscall policy, names and groups, as numbers for this
// architecture: groups expanded, names absent here dropped, deny taking
// precedence over allow, and the core's unconditional syscalls removed unless
// [unsafe] lifted them.
#pragma once
#include "profile/policy.hpp"
#include "seccomp/spec.hpp"

namespace stockade::plan {

seccomp::Spec seccomp_spec(const profile::SeccompPolicy& p);
// The syscall policy a run under this profile gets: the profile's [seccomp],
// narrowed by the network mode ("none" allows AF_UNIX sockets only). Shared
// with the build-time filter compiler (tools/bpfgen.cpp), so its filters
// match what runs.
seccomp::Spec seccomp_spec_for(const profile::Policy& p);
// The same, always worked out now: seccomp_spec_for takes a built-in profile's
// Spec from the table tools/policygen.cpp writes at build time.
seccomp::Spec seccomp_spec_computed(const profile::Policy& p);
// That table's Spec for p's [seccomp] and network mode, or nullptr. Defined by
// the generated precomputed_policies.cpp; the weak default (none) serves the
// build-time generators.
const seccomp::Spec* precomputed_spec(const profile::Policy& p);

}  // namespace stockade::plan
