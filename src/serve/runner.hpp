// serve's runner (src/serve/runner.py), compiled in: its source, and its
// bytecode as the build's python compiled it (empty without one).
#pragma once
#include <string_view>

namespace stockade::serve {
const char* runner_source();
// The python that compiled runner_bytecode() (sys.implementation.cache_tag,
// e.g. "cpython-311"); a jail's python of another tag compiles the source.
const char* runner_cache_tag();
std::string_view runner_bytecode();
// jail/forkd.c, built as a shared object: what a template's python forks with.
std::string_view forkd_library();
}  // namespace stockade::serve
