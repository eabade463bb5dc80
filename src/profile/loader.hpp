// Loading a profile: TOML files, `extends` chains, `--set` overrides and the
// command line's additions, validated into one Policy. Throws ProfileError.
#pragma once
#include <string>
#include <vector>

#include "profile/diagnostic.hpp"
#include "profile/policy.hpp"

namespace stockade::profile {

struct CommandLine {
    std::string profile;              // name or path; empty means the default
    std::vector<std::string> sets;    // "key=value"
    std::vector<std::string> ro, rw;  // "SRC[:DST]"
    std::vector<std::string> env;     // "KEY=VALUE"
    std::vector<std::string> env_pass;
    std::string cwd;
};

constexpr const char* kDefaultProfile = "python";

Policy load(const CommandLine& cl);
// The same, always from the TOML (load takes a built-in without --set ready-made).
Policy load_parsed(const CommandLine& cl);

// Loads text as if it were the file `name` (no extends to files); for tests and the fuzzer.
Policy load_text(const std::string& text, const std::string& name);

struct Builtin {
    const char* name;
    const char* text;
};
const std::vector<Builtin>& builtins();

}  // namespace stockade::profile
