#include "profile/schema.hpp"

#include <algorithm>
#include <functional>
#include <optional>

#include "profile/limits.hpp"
#include "profile/units.hpp"
#include "net/allowlist.hpp"
#include "net/hostname.hpp"
#include "seccomp/catalog.hpp"
#include "seccomp/families.hpp"
#include "util/error.hpp"

#include <cstring>

namespace stockade::profile {
namespace {

// Walks one table at a time: every key read is marked known, so anything left
// over is reported as unknown with a suggestion from the table's real keys.
class Reader {
public:
    explicit Reader(std::vector<Diagnostic>& d) : diags_(d) {}

    void error(const toml::node* n, const std::string& key, const std::string& msg) {
        Diagnostic d;
        if (n) {
            const auto& src = n->source();
            if (src.path) d.file = *src.path;
            d.line = src.begin.line;
            d.column = src.begin.column;
        }
        d.key = key;
        d.message = msg;
        diags_.push_back(std::move(d));
    }

    void unknown_keys(const toml::table& t, const std::string& prefix, const std::vector<std::string>& known) {
        for (auto&& [k, v] : t) {
            std::string name(k.str());
            if (std::find(known.begin(), known.end(), name) != known.end()) continue;
            std::string msg = "unknown key";
            std::string hint = did_you_mean(name, known);
            if (!hint.empty())
                msg += "; did you mean '" + hint + "'?";
            else
                msg += "; expected one of: " + join(known);
            error(&v, prefix + name, msg);
        }
    }

    const toml::table* table(const toml::table& parent, const char* key) {
        const toml::node* n = parent.get(key);
        if (!n) return nullptr;
        if (!n->is_table()) {
            error(n, key, std::string("expected a table ([") + key + "]), got " + type_name(*n));
            return nullptr;
        }
        return n->as_table();
    }

    template <typename F>
    void string(const toml::table& t, const std::string& prefix, const char* key, F&& apply) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (!n->is_string()) return error(n, prefix + key, "expected a string, got " + type_name(*n));
        std::string v = n->as_string()->get();
        std::string msg = apply(v);
        if (!msg.empty()) error(n, prefix + key, msg);
    }

    void boolean(const toml::table& t, const std::string& prefix, const char* key, bool& out) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (!n->is_boolean()) return error(n, prefix + key, "expected true or false, got " + type_name(*n));
        out = n->as_boolean()->get();
    }

    void id(const toml::table& t, const std::string& prefix, const char* key, uint32_t& out, bool allow_zero) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (!n->is_integer()) return error(n, prefix + key, "expected an integer id, got " + type_name(*n));
        int64_t v = n->as_integer()->get();
        int64_t lo = allow_zero ? 0 : 1;
        if (v < lo || v > 4294967294LL)
            return error(n, prefix + key,
                         "expected an id from " + std::to_string(lo) + " to 4294967294, got " + std::to_string(v) +
                             (v == 0 ? " (root is never mapped into or out of the jail)" : ""));
        out = static_cast<uint32_t>(v);
    }

    void size(const toml::table& t, const std::string& prefix, const char* key, uint64_t& out, uint64_t min,
              uint64_t max, bool zero_ok = false) {
        const toml::node* n = t.get(key);
        if (!n) return;
        std::optional<uint64_t> v;
        if (n->is_integer()) {
            int64_t i = n->as_integer()->get();
            if (i >= 0) v = static_cast<uint64_t>(i);
        } else if (n->is_string()) {
            v = parse_size(n->as_string()->get());
        } else {
            return error(n, prefix + key, "expected a size like \"512M\", got " + type_name(*n));
        }
        if (!v)
            return error(n, prefix + key,
                         "expected a size like \"512M\" or \"2G\" (units B, K, M, G, T), got " + repr(*n));
        if ((*v != 0 || !zero_ok) && (*v < min || *v > max))
            return error(n, prefix + key,
                         std::string(zero_ok ? "expected 0 (no limit) or " : "expected ") + "a size from " +
                             format_size(min) + " to " + format_size(max) + ", got " + repr(*n));
        out = *v;
    }

    void duration(const toml::table& t, const std::string& prefix, const char* key, uint64_t& out, uint64_t min,
                  uint64_t max) {
        const toml::node* n = t.get(key);
        if (!n) return;
        std::optional<uint64_t> v;
        if (n->is_string())
            v = parse_duration_ms(n->as_string()->get());
        else if (n->is_integer() && n->as_integer()->get() >= 0)
            v = static_cast<uint64_t>(n->as_integer()->get()) * 1000;
        if (!v)
            return error(n, prefix + key, "expected a duration like \"30s\", \"500ms\" or \"10m\", got " + repr(*n));
        if (*v != 0 && (*v < min || *v > max))
            return error(n, prefix + key,
                         "expected 0 (no limit) or a duration from " + std::to_string(min) + "ms to " +
                             std::to_string(max / 1000) + "s, got " + repr(*n));
        out = *v;
    }

    void count(const toml::table& t, const std::string& prefix, const char* key, uint64_t& out, int64_t min,
               int64_t max) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (!n->is_integer()) return error(n, prefix + key, "expected an integer, got " + type_name(*n));
        int64_t v = n->as_integer()->get();
        if (v != 0 && (v < min || v > max))
            return error(n, prefix + key,
                         "expected 0 (no limit) or an integer from " + std::to_string(min) + " to " +
                             std::to_string(max) + ", got " + std::to_string(v));
        out = static_cast<uint64_t>(v);
    }

    // Array of strings; each element validated by apply (returns "" or an error).
    template <typename F>
    void strings(const toml::table& t, const std::string& prefix, const char* key, F&& apply) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (!n->is_array()) return error(n, prefix + key, "expected an array of strings, got " + type_name(*n));
        size_t i = 0;
        for (const toml::node& e : *n->as_array()) {
            std::string k = prefix + key + "[" + std::to_string(i++) + "]";
            if (!e.is_string()) {
                error(&e, k, "expected a string, got " + type_name(e));
                continue;
            }
            std::string msg = apply(e.as_string()->get(), e);
            if (!msg.empty()) error(&e, k, msg);
        }
    }

    // Inline table or table of string -> string.
    template <typename F>
    void string_map(const toml::table& t, const std::string& prefix, const char* key, F&& apply) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (!n->is_table()) return error(n, prefix + key, "expected a table of strings, got " + type_name(*n));
        for (auto&& [k, v] : *n->as_table()) {
            std::string full = prefix + key + "." + std::string(k.str());
            if (!v.is_string()) {
                error(&v, full, "expected a string, got " + type_name(v));
                continue;
            }
            std::string msg = apply(std::string(k.str()), v.as_string()->get());
            if (!msg.empty()) error(&v, full, msg);
        }
    }

    template <typename E>
    void choice(const toml::table& t, const std::string& prefix, const char* key, E& out,
                const std::vector<std::pair<std::string, E>>& options) {
        string(t, prefix, key, [&](const std::string& v) -> std::string {
            std::vector<std::string> names;
            for (auto& [name, val] : options) {
                if (name == v) {
                    out = val;
                    return {};
                }
                names.push_back(name);
            }
            std::string msg = "expected one of " + join(names) + ", got \"" + v + "\"";
            std::string hint = did_you_mean(v, names);
            if (!hint.empty()) msg += "; did you mean \"" + hint + "\"?";
            return msg;
        });
    }

    static std::string join(const std::vector<std::string>& v) {
        std::string s;
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
        return s;
    }

    static std::string type_name(const toml::node& n) {
        switch (n.type()) {
            case toml::node_type::table:
                return "a table";
            case toml::node_type::array:
                return "an array";
            case toml::node_type::string:
                return "a string";
            case toml::node_type::integer:
                return "an integer";
            case toml::node_type::floating_point:
                return "a float";
            case toml::node_type::boolean:
                return "a boolean";
            default:
                return "a date or time";
        }
    }

    static std::string repr(const toml::node& n) {
        if (n.is_string()) return "\"" + std::string(n.as_string()->get()) + "\"";
        if (n.is_integer()) return std::to_string(n.as_integer()->get());
        return type_name(n);
    }

private:
    std::vector<Diagnostic>& diags_;
};

std::string check_abs(const std::string& p, std::string& out) {
    out = normalize_abs_path(p);
    if (out.empty()) return "expected an absolute path without '.' or '..' components, got \"" + p + "\"";
    return {};
}

std::string origin_of(const toml::node& n) {
    const auto& s = n.source();
    std::string o = s.path ? *s.path : std::string("profile");
    return o + ":" + std::to_string(s.begin.line) + ":" + std::to_string(s.begin.column);
}

// Syscall names and @groups: unknown ones are errors (with a suggestion), names
// that exist only on other architectures are noted and skipped.
std::string check_syscall_name(const std::string& v, SeccompPolicy& sp) {
    if (!v.empty() && v[0] == '@') {
        if (seccomp::find_group(v)) return {};
        std::vector<std::string> names = {"@python"};
        for (const auto& g : seccomp::groups()) names.emplace_back(g.name);
        std::string hint = did_you_mean(v, names);
        return "unknown syscall group \"" + v + "\"" +
               (hint.empty() ? "; groups: " + Reader::join(names) : "; did you mean \"" + hint + "\"?");
    }
    if (seccomp::resolve(v) >= 0) return {};
    if (seccomp::known_elsewhere(v)) {
        sp.notes.push_back(v + " is not a syscall on " + seccomp::native_arch_name() + "; skipped");
        return {};
    }
    std::string hint = did_you_mean(v, seccomp::native_names());
    return "unknown syscall \"" + v + "\"" + (hint.empty() ? std::string() : "; did you mean \"" + hint + "\"?");
}

// ---- The schema: one row per key ------------------------------------------
// Each row names its key once, with its type, range and default as a person
// reads them (for the man page check and the CLI's flags), and how it is read
// into the Policy. validate() walks the rows; unknown keys are what no row names.

struct Context {
    std::vector<std::string> unsafe;  // [unsafe] allow_syscalls, read before [seccomp]
};

using ReadFn = std::function<void(Reader&, const toml::table&, const std::string&, Policy&, Context&)>;

struct Row {
    KeyDoc doc;
    ReadFn read;
};

Row size_row(const char* section, const char* key, uint64_t Policy::*member, uint64_t min, uint64_t max,
             const char* def, const char* doc) {
    return {{section, key, "size", def, doc, nullptr},
            [=](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                r.size(t, pre, key, p.*member, min, max);
            }};
}

Row limit_schema_row(const LimitRow& lr) {
    const LimitRow* row = &lr;  // the table outlives every reader
    return {{"limits", row->key, limit_type(*row), row->def, row->doc, row->flag},
            [row](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                const auto lo = static_cast<uint64_t>(row->min), hi = static_cast<uint64_t>(row->max);
                switch (row->kind) {
                    case LimitKind::Size:
                        return r.size(t, pre, row->key, p.limits.*row->u64, lo, hi, true);
                    case LimitKind::Duration:
                        return r.duration(t, pre, row->key, p.limits.*row->u64, lo, hi);
                    case LimitKind::Count:
                        return r.count(t, pre, row->key, p.limits.*row->u64, static_cast<int64_t>(lo),
                                       static_cast<int64_t>(hi));
                    case LimitKind::Cores:
                        break;
                }
                const toml::node* n = t.get(row->key);
                if (!n) return;
                std::optional<double> v;
                if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
                if (n->is_floating_point()) v = n->as_floating_point()->get();
                if (!v || (*v != 0 && (*v < row->min || *v > row->max)))
                    r.error(n, pre + row->key,
                            "expected 0 (no limit) or a number of CPU cores from 0.01 to 1024 (e.g. 0.5 or 2), got " +
                                Reader::repr(*n));
                else
                    p.limits.*row->f64 = *v;
            }};
}

Row id_row(const char* key, uint32_t Policy::*member, const char* def, const char* doc) {
    return {{"user", key, "id", def, doc, nullptr},
            [=](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                r.id(t, pre, key, p.*member, false);
            }};
}

Row bool_row(const char* section, const char* key, bool Policy::*member, const char* def, const char* doc) {
    return {{section, key, "boolean", def, doc, nullptr},
            [=](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                r.boolean(t, pre, key, p.*member);
            }};
}

Row path_row(const char* section, const char* key, std::string Policy::*member, const char* def, const char* doc) {
    return {{section, key, "absolute path", def, doc, nullptr},
            [=](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                r.string(t, pre, key, [&](const std::string& v) { return check_abs(v, p.*member); });
            }};
}

std::string check_nameserver(const std::string& v) {
    std::string host = v;
    if (!host.empty() && host.front() == '[') {
        size_t close = host.find(']');
        if (close == std::string::npos) return "expected \"IP\", \"IP:port\" or \"[IPv6]:port\", got \"" + v + "\"";
        host = host.substr(1, close - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
        std::string port = host.substr(host.find(':') + 1);
        host = host.substr(0, host.find(':'));
        if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
            std::stoi(port) < 1 || std::stoi(port) > 65535)
            return "expected a port from 1 to 65535 in \"" + v + "\"";
    }
    if (!net::parse_ip(host)) return "expected \"IP\", \"IP:port\" or \"[IPv6]:port\", got \"" + v + "\"";
    return {};
}

const std::vector<Row>& rows() {
    using D = SeccompPolicy::Default;
    static const std::vector<Row> all = [] {
        std::vector<Row> all = {
            {{"", "description", "string", "\"\"", "one line saying what the profile is for", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string(t, pre, "description", [&](const std::string& v) {
                     p.description = v;
                     return std::string();
                 });
             }},

            // [run]
            path_row("run", "python", &Policy::python, "\"/usr/bin/python3\"", "the interpreter `run` starts"),
            {{"run", "python_args", "array of strings", "[]", "arguments before the script", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "python_args", [&](const std::string& v, const toml::node&) {
                     p.python_args.push_back(v);
                     return std::string();
                 });
             }},
            // What `stockade exec` may start, after PATH lookup inside the jail.
            {{"run", "exec_allow", "array of path globs", "[\"/usr/bin/*\", \"/usr/sbin/*\", \"/bin/*\", \"/sbin/*\"]",
              "what any execve in the jail may run", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "exec_allow", [&](const std::string& v, const toml::node&) -> std::string {
                     if (v.empty() || v[0] != '/')
                         return "expected an absolute path or glob (\"/usr/bin/*\"), got \"" + v + "\"";
                     p.exec_allow.push_back(v);
                     return {};
                 });
             }},
            path_row("run", "cwd", &Policy::cwd, "\"/work\"", "the working directory inside the jail"),
            {{"run", "hostname", "host name", "\"stockade\"", "the jail's hostname (its own UTS namespace)", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string(t, pre, "hostname", [&](const std::string& v) -> std::string {
                     bool ok = !v.empty() && v.size() <= 64 && v.front() != '-' &&
                               std::all_of(v.begin(), v.end(), [](char c) {
                                   return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
                               });
                     if (!ok) return "expected a hostname of 1 to 64 letters, digits, '-' and '.', got \"" + v + "\"";
                     p.hostname = v;
                     return {};
                 });
             }},

            // [user]
            id_row("uid", &Policy::uid, "1000", "the uid inside the jail"),
            id_row("gid", &Policy::gid, "1000", "the gid inside the jail"),
            {{"user", "name", "user name", "\"sandbox\"", "the user's name in the jail's /etc/passwd", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string(t, pre, "name", [&](const std::string& v) -> std::string {
                     bool ok = !v.empty() && v.size() <= 32 &&
                               (std::islower(static_cast<unsigned char>(v[0])) || v[0] == '_') &&
                               std::all_of(v.begin(), v.end(), [](char c) {
                                   return std::islower(static_cast<unsigned char>(c)) ||
                                          std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                               });
                     if (!ok)
                         return "expected a user name like \"sandbox\" ([a-z_][a-z0-9_-]*, at most 32), got \"" + v +
                                "\"";
                     p.user_name = v;
                     return {};
                 });
             }},
            {{"user", "home", "absolute path", "\"/home/sandbox\"", "HOME, a private tmpfs", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string(t, pre, "home", [&](const std::string& v) -> std::string {
                     std::string m = check_abs(v, p.home);
                     if (m.empty() && p.home == "/") return "expected a directory below /, got \"/\"";
                     return m;
                 });
             }},
            // When stockade runs as root, the jail's user is an unprivileged host user,
            // so a process that ever got out of the namespaces would be nobody.
            id_row("root_host_uid", &Policy::root_host_uid, "65534", "the jail's host uid when stockade runs as root"),
            id_row("root_host_gid", &Policy::root_host_gid, "65534", "the jail's host gid when stockade runs as root"),

            // [filesystem]
            // /etc/alternatives: Debian reaches libraries such as libblas.so.3 (numpy) through it.
            {{"filesystem", "ro", "array of SRC[:DST]", "[\"/usr\", \"/etc/ld.so.cache\", \"/etc/alternatives\"]",
              "host paths bound read-only", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "ro", [&](const std::string& v, const toml::node& n) {
                     Bind b;
                     std::string m = parse_bind_spec(v, false, b);
                     if (m.empty()) {
                         b.origin = origin_of(n);
                         p.binds.push_back(std::move(b));
                     }
                     return m;
                 });
             }},
            {{"filesystem", "rw", "array of SRC[:DST]", "[]", "host paths bound read-write (noexec)", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "rw", [&](const std::string& v, const toml::node& n) {
                     Bind b;
                     std::string m = parse_bind_spec(v, true, b);
                     if (m.empty()) {
                         b.origin = origin_of(n);
                         p.binds.push_back(std::move(b));
                     }
                     return m;
                 });
             }},
            // Debian 12 is merged-/usr: the top-level directories are links into /usr.
            {{"filesystem", "symlinks", "table of path = target",
              "{ \"/bin\" = \"usr/bin\", \"/sbin\" = \"usr/sbin\", \"/lib\" = \"usr/lib\", \"/lib64\" = \"usr/lib64\" }",
              "symlinks made in the jail's root", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string_map(t, pre, "symlinks",
                              [&](const std::string& path, const std::string& target) -> std::string {
                                  Symlink sl;
                                  if (std::string m = check_abs(path, sl.path); !m.empty()) return "link path: " + m;
                                  if (target.empty() || target.find('\0') != std::string::npos)
                                      return "expected a non-empty link target";
                                  sl.target = target;
                                  p.symlinks.push_back(std::move(sl));
                                  return {};
                              });
             }},
            {{"filesystem", "proc", "\"pid\" or \"full\"", "\"pid\"", "what /proc shows", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.choice(t, pre, "proc", p.proc, {{"pid", ProcMode::Pid}, {"full", ProcMode::Full}});
             }},
            size_row("filesystem", "tmp_size", &Policy::tmp_size, 64 << 10, 1ull << 40, "\"128M\"", "the size of /tmp"),
            size_row("filesystem", "home_size", &Policy::home_size, 64 << 10, 1ull << 40, "\"128M\"",
                     "the size of HOME"),
            size_row("filesystem", "shm_size", &Policy::shm_size, 64 << 10, 1ull << 40, "\"64M\"",
                     "the size of /dev/shm"),
            bool_row("filesystem", "noexec_writable", &Policy::noexec_writable, "true",
                     "noexec on /tmp, HOME, /dev/shm and --rw binds"),

            // [env]
            {{"env", "set", "table of NAME = value",
              "{ PATH = \"/usr/local/bin:/usr/bin:/bin\", LANG = \"C.UTF-8\", PYTHONDONTWRITEBYTECODE = \"1\" }",
              "variables set in the jail", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string_map(t, pre, "set", [&](const std::string& k, const std::string& v) -> std::string {
                     if (!valid_env_key(k)) return "expected a variable name ([A-Za-z_][A-Za-z0-9_]*)";
                     if (v.find('\0') != std::string::npos) return "value contains a NUL byte";
                     p.env.emplace_back(k, v);
                     return {};
                 });
             }},
            {{"env", "pass", "array of names", "[\"TERM\"]", "variables passed from the caller", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "pass", [&](const std::string& v, const toml::node&) -> std::string {
                     if (!valid_env_key(v))
                         return "expected a variable name ([A-Za-z_][A-Za-z0-9_]*), got \"" + v + "\"";
                     p.env_pass.push_back(v);
                     return {};
                 });
             }},

            // [network]
            {{"network", "mode", "none, loopback, proxy or host", "\"loopback\"", "the jail's network", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.choice(t, pre, "mode", p.net,
                          {{"none", NetMode::None},
                           {"loopback", NetMode::Loopback},
                           {"proxy", NetMode::Proxy},
                           {"host", NetMode::Host}});
             }},
            {{"network", "allow", "array of destinations", "[]", "what the proxy may reach", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "allow", [&](const std::string& v, const toml::node&) -> std::string {
                     net::Rule rule;
                     std::string m = net::parse_rule(v, rule);
                     if (m.empty()) p.net_allow.push_back(v);
                     return m;
                 });
             }},
            {{"network", "hosts", "table of name = IP", "{}", "pins for the proxy's resolver", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string_map(t, pre, "hosts", [&](const std::string& name, const std::string& ip) -> std::string {
                     if (!net::parse_ip(ip)) return "expected an IP address, got \"" + ip + "\"";
                     // The same normal form the proxy gives a request's host.
                     auto lname = net::normalize_host(name);
                     if (!lname) return "expected a host name (letters, digits, '-' and '.'), got \"" + name + "\"";
                     p.net_hosts.emplace_back(*lname, ip);
                     return {};
                 });
             }},
            {{"network", "proxy_port", "port", "3128", "where the proxy listens inside the jail", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 uint64_t port = 0;
                 r.count(t, pre, "proxy_port", port, 1, 65535);
                 if (port) p.proxy_port = static_cast<uint16_t>(port);
             }},
            {{"network", "nameservers", "array of IP[:port]", "[]", "the proxy's DNS servers (default: resolv.conf)",
              nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "nameservers", [&](const std::string& v, const toml::node&) -> std::string {
                     std::string m = check_nameserver(v);
                     if (m.empty()) p.net_nameservers.push_back(v);
                     return m;
                 });
             }},

            // [namespaces]
            bool_row("namespaces", "time", &Policy::time_ns, "false", "a time namespace of the jail's own"),

            // [unsafe]: before [seccomp], whose allow list depends on it
            {{"unsafe", "allow_syscalls", "array of core syscall names", "[]", "lift the hard-deny core for these",
              nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context& c) {
                 r.strings(t, pre, "allow_syscalls", [&](const std::string& v, const toml::node&) -> std::string {
                     if (!seccomp::find_core(v))
                         return "\"" + v + "\" is not in the hard-deny core; allow it in seccomp.allow instead";
                     c.unsafe.push_back(v);
                     return {};
                 });
                 p.seccomp.unsafe_allow = c.unsafe;
             }},
            {{"unsafe", "disable_seccomp", "boolean", "false", "no filter at all", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.boolean(t, pre, "disable_seccomp", p.seccomp.disabled);
             }},
            bool_row("unsafe", "host_network", &Policy::unsafe_host_network, "false", "allow network.mode = \"host\""),
            bool_row("unsafe", "root_host_ids", &Policy::unsafe_root_host_ids, "false",
                     "let root_host_uid/gid name any host id"),

            // [seccomp]
            {{"seccomp", "default_action", "errno, kill or log", "\"errno\"", "what an unlisted syscall gets", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.choice(t, pre, "default_action", p.seccomp.default_action,
                          {{"errno", D::Errno}, {"kill", D::Kill}, {"log", D::Log}});
             }},
            // An unlisted syscall fails as on an older kernel, so libraries fall back instead of crashing.
            {{"seccomp", "default_errno", "errno name", "\"ENOSYS\"", "the errno for unlisted syscalls", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string(t, pre, "default_errno", [&](const std::string& v) -> std::string {
                     auto e = errno_by_name(v);
                     if (!e) return "expected an errno name like \"EPERM\" or \"ENOSYS\", got \"" + v + "\"";
                     p.seccomp.default_errno = *e;
                     return {};
                 });
             }},
            {{"seccomp", "allow", "array of syscalls and @groups", "[\"@python\"]", "the allowlist", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context& c) {
                 SeccompPolicy& sp = p.seccomp;
                 r.strings(t, pre, "allow", [&](const std::string& v, const toml::node&) -> std::string {
                     std::string m = check_syscall_name(v, sp);
                     if (!m.empty()) return m;
                     if (seccomp::core_refuses_always(v, c.unsafe))
                         return "\"" + v + "\" is in stockade's hard-deny core (" + seccomp::find_core(v)->why +
                                "); allowing it needs [unsafe] allow_syscalls = [\"" + v + "\"]";
                     sp.allow.push_back(v);
                     return {};
                 });
             }},
            {{"seccomp", "deny", "array of syscalls and @groups", "[]", "refused with deny_errno", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "deny", [&](const std::string& v, const toml::node&) -> std::string {
                     std::string m = check_syscall_name(v, p.seccomp);
                     if (m.empty()) p.seccomp.deny.push_back(v);
                     return m;
                 });
             }},
            {{"seccomp", "deny_errno", "errno name", "\"EPERM\"", "the errno for denied syscalls", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.string(t, pre, "deny_errno", [&](const std::string& v) -> std::string {
                     auto e = errno_by_name(v);
                     if (!e) return "expected an errno name like \"EPERM\" or \"ENOSYS\", got \"" + v + "\"";
                     p.seccomp.deny_errno = *e;
                     return {};
                 });
             }},
            {{"seccomp", "socket_families", "array of family names", "[\"unix\", \"inet\", \"inet6\"]",
              "what socket() may create", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.strings(t, pre, "socket_families", [&](const std::string& v, const toml::node&) -> std::string {
                     const seccomp::Family* f = seccomp::family_by_name(v);
                     if (f && f->core) return "\"" + v + "\" sockets are in stockade's hard-deny core";
                     if (f) {
                         p.seccomp.socket_families.push_back(f->number);
                         return {};
                     }
                     std::vector<std::string> names;
                     for (const auto& fam : seccomp::kFamilies)
                         if (!fam.core) names.push_back(fam.name);
                     std::string hint = did_you_mean(v, names);
                     return "unknown socket family \"" + v + "\"; expected one of " + Reader::join(names) +
                            (hint.empty() ? std::string() : "; did you mean \"" + hint + "\"?");
                 });
             }},

            // [limits]: the numeric ones come from the limits table (profile/limits),
            // and are inserted here, before these two.
            {{"limits", "output_action", "\"truncate\" or \"kill\"", "\"truncate\"", "what happens at the output cap",
              nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 bool kill = p.limits.output_kill;
                 r.choice(t, pre, "output_action", kill, {{"truncate", false}, {"kill", true}});
                 p.limits.output_kill = kill;
             }},
            {{"limits", "require_cgroup", "boolean", "false", "refuse to run without a cgroup for the limits", nullptr},
             [](Reader& r, const toml::table& t, const std::string& pre, Policy& p, Context&) {
                 r.boolean(t, pre, "require_cgroup", p.limits.require_cgroup);
             }},
        };
        // The limits table's rows go before output_action, in the table's order.
        auto at =
            std::find_if(all.begin(), all.end(), [](const Row& r) { return std::string(r.doc.section) == "limits"; });
        std::vector<Row> limits;
        for (const auto& lr : limit_rows()) limits.push_back(limit_schema_row(lr));
        all.insert(at, limits.begin(), limits.end());
        return all;
    }();
    return all;
}

}  // namespace

const std::vector<KeyDoc>& schema_keys() {
    static const std::vector<KeyDoc> docs = [] {
        std::vector<KeyDoc> v;
        for (const auto& row : rows()) v.push_back(row.doc);
        return v;
    }();
    return docs;
}

std::string defaults_toml() {
    // Every key at its row's default: what a profile without `extends` stands
    // on, so each default has one home and a bare profile is as safe as the
    // built-in one.
    std::string out, section = "\x01";
    for (const auto& k : schema_keys()) {
        if (k.section != section) {
            section = k.section;
            if (!section.empty()) out += "[" + section + "]\n";
        }
        out += std::string(k.key) + " = " + k.def + "\n";
    }
    return out;
}

bool valid_env_key(const std::string& k) {
    if (k.empty() || (k[0] >= '0' && k[0] <= '9')) return false;
    return std::all_of(k.begin(), k.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string normalize_abs_path(const std::string& p) {
    if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos) return {};
    std::string out;
    size_t i = 0;
    while (i < p.size()) {
        while (i < p.size() && p[i] == '/') ++i;
        size_t j = p.find('/', i);
        if (j == std::string::npos) j = p.size();
        std::string comp = p.substr(i, j - i);
        if (comp == "." || comp == "..") return {};
        if (!comp.empty()) out += "/" + comp;
        i = j;
    }
    return out.empty() ? "/" : out;
}

std::string parse_bind_spec(const std::string& spec, bool writable, Bind& out) {
    // A single ':' separates SRC and DST; paths with ':' in them can use the long form twice.
    size_t colon = spec.find(':');
    std::string src = spec.substr(0, colon);
    std::string dst = colon == std::string::npos ? src : spec.substr(colon + 1);
    if (std::string m = check_abs(src, out.src); !m.empty()) return "source: " + m;
    if (std::string m = check_abs(dst, out.dst); !m.empty()) return "destination: " + m;
    if (out.dst == "/") return "destination: cannot bind over the jail's root";
    for (const char* reserved : {"/proc", "/dev"}) {
        std::string r(reserved);
        if (out.dst == r || out.dst.rfind(r + "/", 0) == 0)
            return "destination: " + r + " is built by stockade and cannot be bound over";
    }
    out.writable = writable;
    return {};
}

void read_limits(const toml::table& limits, Policy& p, std::vector<Diagnostic>& diags) {
    Reader r(diags);
    Context ctx;
    for (const auto& lr : limit_rows())
        if (limits.contains(lr.key)) limit_schema_row(lr).read(r, limits, "limits.", p, ctx);
}

Policy validate(const toml::table& root, std::vector<Diagnostic>& diags) {
    Policy p;
    Reader r(diags);
    Context ctx;
    // The sections, in the rows' order; the top level also holds the loader's keys.
    std::vector<std::string> sections;
    for (const auto& row : rows())
        if (*row.doc.section && std::find(sections.begin(), sections.end(), row.doc.section) == sections.end())
            sections.emplace_back(row.doc.section);
    auto keys_of = [](const std::string& section) {
        std::vector<std::string> keys;
        for (const auto& row : rows())
            if (section == row.doc.section) keys.emplace_back(row.doc.key);
        return keys;
    };
    std::vector<std::string> top(std::begin(kLoaderKeys), std::end(kLoaderKeys));
    for (const auto& k : keys_of("")) top.push_back(k);
    top.insert(top.end(), sections.begin(), sections.end());
    r.unknown_keys(root, "", top);
    for (const auto& row : rows())
        if (!*row.doc.section) row.read(r, root, "", p, ctx);
    for (const auto& section : sections) {
        const toml::table* t = r.table(root, section.c_str());
        if (!t) continue;
        const std::string pre = section + ".";
        r.unknown_keys(*t, pre, keys_of(section));
        for (const auto& row : rows())
            if (section == row.doc.section) row.read(r, *t, pre, p, ctx);
    }

    if (p.net == NetMode::Host && !p.unsafe_host_network)
        r.error(root.get("network"), "network.mode",
                "\"host\" shares the host's network; it needs [unsafe] host_network = true");
    // The host identity of a root-run jail: nobody, or the subordinate-id space
    // (100000 and up, where useradd hands out ranges for user namespaces and no
    // login user or system group lives). Anything else may be a group such as
    // shadow (42) or disk (6) whose files a jail could then read.
    if (!p.unsafe_root_host_ids) {
        for (auto [key, v] :
             {std::pair{"root_host_uid", p.root_host_uid}, std::pair{"root_host_gid", p.root_host_gid}}) {
            if (v == 65534 || v >= 100000) continue;
            const toml::node* user = root.get("user");
            const toml::node* n = user && user->is_table() ? user->as_table()->get(key) : nullptr;
            r.error(n ? n : user, std::string("user.") + key,
                    "expected 65534 or an id of 100000 or more (an unprivileged host identity), got " +
                        std::to_string(v) + "; another id needs [unsafe] root_host_ids = true");
        }
    }

    // Cross-key rules, reported against the key the user most likely has to change.
    if (p.home == "/tmp" || p.home.rfind("/tmp/", 0) == 0 || p.home == "/work" || p.home.rfind("/proc", 0) == 0 ||
        p.home.rfind("/dev", 0) == 0)
        r.error(root.get("user"), "user.home", "HOME must not be /tmp, /work, /proc or /dev, got \"" + p.home + "\"");
    return p;
}

const char* to_string(NetMode m) {
    switch (m) {
        case NetMode::None:
            return "none";
        case NetMode::Loopback:
            return "loopback";
        case NetMode::Proxy:
            return "proxy";
        case NetMode::Host:
            return "host";
    }
    return "?";
}
const char* to_string(ProcMode m) { return m == ProcMode::Pid ? "pid" : "full"; }

}  // namespace stockade::profile
