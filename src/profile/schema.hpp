// The TOML schema: which keys exist, what each must hold, and how it maps onto Policy.
#pragma once
#include "profile/toml.hpp"

#include <vector>

#include "profile/diagnostic.hpp"
#include "profile/policy.hpp"

namespace stockade::profile {

// Validates a fully merged table (extends and --set applied) into a Policy.
// Every problem is appended to diags; the Policy is meaningful only when none were.
Policy validate(const toml::table& root, std::vector<Diagnostic>& diags);
// The limit rows' keys present in a [limits] table, read onto p as validate
// reads them (each row reads its own key and nothing else).
void read_limits(const toml::table& limits, Policy& p, std::vector<Diagnostic>& diags);

// One key of the schema as a person reads it: the man page, explain and the
// CLI's limit flags come from these.
struct KeyDoc {
    const char* section;  // "" for the top level
    const char* key;
    const char* type;
    const char* def;       // the default, as a profile would write it
    const char* doc;       // one line
    const char* cli_flag;  // a flag of run/exec that sets it ("--memory"), or nullptr
};
const std::vector<KeyDoc>& schema_keys();
// Every key at its default, as one TOML document (top-level keys first).
std::string defaults_toml();

// Keys that may appear at the top of a profile file but are consumed by the loader.
inline constexpr const char* kLoaderKeys[] = {"schema", "extends"};

// Parses "SRC" or "SRC:DST" into a Bind; returns an error message or "".
std::string parse_bind_spec(const std::string& spec, bool writable, Bind& out);
// An environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool valid_env_key(const std::string& k);
// Absolute, no "." or ".." components; collapses repeated slashes. Returns "" on failure.
std::string normalize_abs_path(const std::string& p);

}  // namespace stockade::profile
