#include "profile/loader.hpp"

#include "profile/toml.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <tuple>
#include <vector>

#include "profile/limits.hpp"
#include "profile/nesting.hpp"
#include "profile/precomputed.hpp"
#include "profile/schema.hpp"
#include "util/fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace stockade::profile {
namespace {

[[noreturn]] void fail(std::string file, unsigned line, unsigned col, std::string key, std::string msg) {
    throw ProfileError{{Diagnostic{std::move(file), line, col, std::move(key), std::move(msg)}}};
}

toml::table parse(const std::string& text, const std::string& display) {
    // toml++ recurses once per level of nesting: cap the depth before it sees the text.
    if (auto deep = too_deep(text))
        fail(display, deep->line, deep->column, "",
             "nested deeper than " + std::to_string(kMaxNesting) + " levels (tables, arrays or dotted keys)");
    try {
        return toml::parse(text, display);
    } catch (const toml::parse_error& e) {
        fail(display, e.source().begin.line, e.source().begin.column, "",
             "TOML syntax: " + std::string(e.description()));
    }
}

// Moves keeps toml++'s source positions (copies drop them), so the merged table
// still points every value at the file and line that set it.
void merge_into(toml::table& base, toml::table&& over) {
    for (auto&& [k, v] : over) {
        toml::node* existing = base.get(k);
        if (existing && existing->is_table() && v.is_table()) {
            merge_into(*existing->as_table(), std::move(*v.as_table()));
            continue;
        }
        v.visit([&, &key = k](auto&& val) { base.insert_or_assign(key, std::move(val)); });
    }
}

bool is_path_ref(const std::string& ref) {
    return ref.find('/') != std::string::npos || (ref.size() > 5 && ref.compare(ref.size() - 5, 5, ".toml") == 0);
}

std::vector<std::string> builtin_names() {
    std::vector<std::string> n;
    for (const auto& b : builtins()) n.emplace_back(b.name);
    return n;
}

constexpr size_t kMaxProfileBytes = 1 << 20;

// A profile may come from someone else (an agent's configuration, a shared
// repository): regular files only, and the size is checked before reading, so
// `extends = "/dev/zero"` or a FIFO is an error rather than a hang.
std::string read_profile_file(const std::string& path, const Diagnostic& where) {
    auto cannot = [&](const std::string& why) {
        fail(where.file, where.line, where.column, where.key, "cannot read profile " + path + ": " + why);
    };
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) cannot(std::strerror(errno));
    struct stat st;
    if (::fstat(fd.get(), &st) < 0) cannot(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) cannot("expected a regular file");
    if (static_cast<uint64_t>(st.st_size) > kMaxProfileBytes) fail(path, 0, 0, "", "profile is larger than 1 MiB");
    std::string text(kMaxProfileBytes + 1, '\0');
    size_t got = 0;
    while (got < text.size()) {
        ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) cannot(std::strerror(errno));
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    if (got > kMaxProfileBytes) fail(path, 0, 0, "", "profile is larger than 1 MiB");
    text.resize(got);
    return text;
}

struct Resolved {
    std::string display;  // what errors call it
    std::string id;       // identity for cycle detection
    std::string dir;      // where a relative `extends` path is looked up
    std::string text;
};

Resolved resolve(const std::string& ref, const std::string& from_dir, const Diagnostic& where) {
    if (!is_path_ref(ref)) {
        for (const auto& b : builtins())
            if (ref == b.name) return {std::string("<builtin>/") + b.name + ".toml", "builtin:" + ref, "", b.text};
        auto names = builtin_names();
        std::string msg = "unknown profile '" + ref + "'";
        std::string hint = did_you_mean(ref, names);
        if (!hint.empty()) msg += "; did you mean '" + hint + "'?";
        std::string list;
        for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
        msg += " (built-in: " + list + "; or a path to a .toml file)";
        fail(where.file, where.line, where.column, where.key, msg);
    }
    std::string path = ref;
    if (path[0] != '/' && !from_dir.empty()) path = from_dir + "/" + path;
    std::string text = read_profile_file(path, where);
    char* real = ::realpath(path.c_str(), nullptr);
    std::string id = real ? real : path;
    free(real);
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? std::string(".") : (slash == 0 ? "/" : path.substr(0, slash));
    return {path, id, dir, std::move(text)};
}

toml::table load_chain(const Resolved& r, std::vector<std::string>& chain) {
    if (std::find(chain.begin(), chain.end(), r.id) != chain.end()) {
        std::string c;
        for (auto& x : chain) c += x + " -> ";
        fail(r.display, 0, 0, "extends", "extends cycle: " + c + r.id);
    }
    if (chain.size() >= 8) fail(r.display, 0, 0, "extends", "extends chain deeper than 8 profiles");
    chain.push_back(r.id);

    toml::table t = parse(r.text, r.display);
    const toml::node* schema = t.get("schema");
    if (!schema) fail(r.display, 1, 1, "schema", "missing; every profile starts with 'schema = 1'");
    if (!schema->is_integer() || schema->as_integer()->get() != 1)
        fail(r.display, schema->source().begin.line, schema->source().begin.column, "schema",
             "unsupported schema version; this stockade reads schema = 1");

    const toml::node* ext = t.get("extends");
    if (!ext) {
        // The root of every chain stands on the schema's defaults.
        toml::table base = parse(defaults_toml(), "<defaults>");
        merge_into(base, std::move(t));
        return base;
    }
    if (!ext->is_string())
        fail(r.display, ext->source().begin.line, ext->source().begin.column, "extends",
             "expected a profile name or path (a string)");
    Diagnostic where{r.display, ext->source().begin.line, ext->source().begin.column, "extends", ""};
    Resolved parent_ref = resolve(ext->as_string()->get(), r.dir, where);
    toml::table merged = load_chain(parent_ref, chain);
    merge_into(merged, std::move(t));
    return merged;
}

std::string toml_quote(const std::string& v) {
    std::string q = "\"";
    for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
            q += '\\';
            q += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            q += buf;
        } else {
            q += static_cast<char>(c);
        }
    }
    return q + "\"";
}

// "--set limits.memory=512M": the value is read as TOML when it parses as TOML,
// and as a plain string otherwise, so both `--set run.cwd=/data` and
// `--set 'filesystem.ro=["/usr"]'` work.
void apply_set(toml::table& root, const std::string& assignment) {
    size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        fail("--set", 0, 0, "", "expected KEY=VALUE (e.g. --set network.mode=none), got \"" + assignment + "\"");
    std::string key = assignment.substr(0, eq);
    std::string value = assignment.substr(eq + 1);
    std::vector<std::string> parts;
    std::stringstream ks(key);
    for (std::string seg; std::getline(ks, seg, '.');) {
        bool ok = !seg.empty() && std::all_of(seg.begin(), seg.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
        if (!ok) fail("--set", 0, 0, key, "expected a dotted key like run.cwd");
        parts.push_back(seg);
    }
    if (parts.front() == "schema" || parts.front() == "extends")
        fail("--set", 0, 0, key, "cannot be overridden; use -p to choose the profile");

    toml::table parsed;
    try {
        parsed = toml::parse("v = " + value, std::string("--set"));
    } catch (const toml::parse_error&) {
        try {
            parsed = toml::parse("v = " + toml_quote(value), std::string("--set"));
        } catch (const toml::parse_error& e) {
            fail("--set", 0, 0, key, "value: " + std::string(e.description()));
        }
    }
    toml::table* cur = &root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        toml::node* n = cur->get(parts[i]);
        if (!n) {
            cur->insert(parts[i], toml::table{});
            n = cur->get(parts[i]);
        }
        if (!n->is_table()) fail("--set", 0, 0, key, "'" + parts[i] + "' is not a table");
        cur = n->as_table();
    }
    parsed.get("v")->visit([&](auto&& val) { cur->insert_or_assign(parts.back(), std::move(val)); });
}

// --set limits.KEY=VALUE only: each value parsed as apply_set parses it and
// read by the limit's own schema row. False when anything else is set or a
// value is refused (the full path then says why, with every other problem).
bool set_limits(Policy& p, const std::vector<std::string>& sets) {
    if (sets.empty()) return true;
    toml::table root;
    for (const auto& s : sets) {
        if (s.rfind("limits.", 0) != 0) return false;
        const size_t eq = s.find('=');
        if (eq == std::string::npos || !limit_row(s.substr(7, eq - 7))) return false;
        try {
            apply_set(root, s);
        } catch (const ProfileError&) {
            return false;
        }
    }
    std::vector<Diagnostic> diags;
    read_limits(*root.get("limits")->as_table(), p, diags);
    return diags.empty();
}

// Path components with "." dropped and ".." applied, lexically (a symlinked
// source is refused later anyway); escapes: a ".." went above the start.
std::vector<std::string> lexical(const std::string& path, bool* escapes) {
    std::vector<std::string> parts;
    for (size_t i = 0; i <= path.size();) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        std::string comp = path.substr(i, j - i);
        if (comp == "..") {
            if (parts.empty())
                *escapes = true;
            else
                parts.pop_back();
        } else if (!comp.empty() && comp != ".") {
            parts.push_back(comp);
        }
        i = j + 1;
    }
    return parts;
}

std::string joined(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& c : parts) out += (out.empty() ? "" : "/") + c;
    return out;
}

// A relative source on the command line is the caller's: it resolves against
// the current directory. Without a destination it lands below the jail's
// working directory, where the script looks for it (--ro data.csv ->
// /work/data.csv).
std::string resolve_cli_bind(const std::string& spec, const std::string& jail_cwd) {
    size_t colon = spec.find(':');
    std::string src = spec.substr(0, colon);
    char cwd[4096];
    if (src.empty() || src[0] == '/' || !::getcwd(cwd, sizeof cwd)) return spec;
    bool escapes = false, ignored = false;
    const std::vector<std::string> rel = lexical(src, &escapes);
    const std::vector<std::string> abs_parts = lexical(std::string(cwd) + "/" + src, &ignored);
    const std::string abs = "/" + joined(abs_parts);
    if (colon != std::string::npos) return abs + spec.substr(colon);
    std::string dst = (escapes || rel.empty()) ? (abs_parts.empty() ? "" : abs_parts.back()) : joined(rel);
    return abs + ":" + (jail_cwd == "/" ? "" : jail_cwd) + "/" + dst;
}

void apply_command_line(Policy& p, const CommandLine& cl, std::vector<Diagnostic>& diags) {
    if (!cl.cwd.empty()) {
        std::string c = normalize_abs_path(cl.cwd);
        if (c.empty())
            diags.push_back({"--cwd", 0, 0, cl.cwd, "expected an absolute path inside the jail"});
        else
            p.cwd = c;
    }
    for (bool writable : {false, true}) {
        for (const auto& given : writable ? cl.rw : cl.ro) {
            const std::string spec = resolve_cli_bind(given, p.cwd);
            Bind b;
            std::string m = parse_bind_spec(spec, writable, b);
            if (!m.empty()) {
                diags.push_back({writable ? "--rw" : "--ro", 0, 0, spec, m});
                continue;
            }
            b.origin = writable ? "--rw" : "--ro";
            p.binds.push_back(std::move(b));
        }
    }
    for (const auto& kv : cl.env) {
        size_t eq = kv.find('=');
        std::string k = kv.substr(0, eq);
        if (eq == std::string::npos || !valid_env_key(k)) {
            diags.push_back({"--env", 0, 0, kv, "expected KEY=VALUE with KEY like [A-Za-z_][A-Za-z0-9_]*"});
            continue;
        }
        std::erase_if(p.env, [&](auto& e) { return e.first == k; });
        p.env.emplace_back(k, kv.substr(eq + 1));
    }
    for (const auto& k : cl.env_pass) {
        if (!valid_env_key(k)) {
            diags.push_back({"--env-pass", 0, 0, k, "expected a variable name like [A-Za-z_][A-Za-z0-9_]*"});
            continue;
        }
        p.env_pass.push_back(k);
    }
}

// The command line's additions, and every diagnostic at once.
Policy finish_policy(Policy p, const CommandLine& cl, const std::string& name, std::vector<Diagnostic> diags) {
    apply_command_line(p, cl, diags);
    if (!diags.empty()) {
        // Reading order: a person fixes a file top to bottom.
        std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
        });
        throw ProfileError{std::move(diags)};
    }
    p.name = name;
    return p;
}

Policy finish(toml::table merged, const CommandLine& cl, const std::string& name) {
    for (const auto& s : cl.sets) apply_set(merged, s);
    std::vector<Diagnostic> diags;
    Policy p = validate(merged, diags);
    return finish_policy(std::move(p), cl, name, std::move(diags));
}

}  // namespace

__attribute__((weak)) const Policy* precomputed_policy(std::string_view) { return nullptr; }

Policy load(const CommandLine& cl) {
    std::string ref = cl.profile.empty() ? kDefaultProfile : cl.profile;
    if (!is_path_ref(ref))
        if (const Policy* ready = precomputed_policy(ref)) {
            // A --set of a limit ("limits off" is four of them) reads onto the
            // ready-made one; any other --set, or any error, takes the full path.
            Policy p = *ready;
            if (set_limits(p, cl.sets)) return finish_policy(std::move(p), cl, ref, {});
        }
    return load_parsed(cl);
}

Policy load_parsed(const CommandLine& cl) {
    std::string ref = cl.profile.empty() ? kDefaultProfile : cl.profile;
    Resolved top = resolve(ref, "", Diagnostic{"-p", 0, 0, "", ""});
    std::vector<std::string> chain;
    toml::table merged = load_chain(top, chain);
    return finish(std::move(merged), cl, is_path_ref(ref) ? top.display : ref);
}

Policy load_text(const std::string& text, const std::string& name) {
    std::vector<std::string> chain;
    Resolved r{name, name, "", text};
    return finish(load_chain(r, chain), CommandLine{}, name);
}

}  // namespace stockade::profile
