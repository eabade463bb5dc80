#include "supervise/systemd_scope.hpp"

#include <dlfcn.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "util/clock.hpp"

namespace stockade::supervise {
namespace {

// sd-bus, loaded when needed: the static binary cannot link libsystemd, and
// most runs never need it. Where libsystemd.so.0 cannot be loaded, the scope
// is not asked for and the limits degrade as before.
struct SdBus {
    decltype(&sd_bus_open_user) open_user = nullptr;
    decltype(&sd_bus_message_new_method_call) new_method_call = nullptr;
    decltype(&sd_bus_message_append) append = nullptr;
    decltype(&sd_bus_message_open_container) open_container = nullptr;
    decltype(&sd_bus_message_close_container) close_container = nullptr;
    decltype(&sd_bus_call) call = nullptr;
    decltype(&sd_bus_message_unref) message_unref = nullptr;
    decltype(&sd_bus_flush_close_unref) close_unref = nullptr;
    decltype(&sd_bus_error_free) error_free = nullptr;

    bool load(std::string& why) {
        void* h = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            why = std::string("libsystemd.so.0 could not be loaded: ") + ::dlerror();
            return false;
        }
        auto sym = [&](auto& fn, const char* name) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
            return fn != nullptr;
        };
        if (!(sym(open_user, "sd_bus_open_user") && sym(new_method_call, "sd_bus_message_new_method_call") &&
              sym(append, "sd_bus_message_append") && sym(open_container, "sd_bus_message_open_container") &&
              sym(close_container, "sd_bus_message_close_container") && sym(call, "sd_bus_call") &&
              sym(message_unref, "sd_bus_message_unref") && sym(close_unref, "sd_bus_flush_close_unref") &&
              sym(error_free, "sd_bus_error_free"))) {
            why = "libsystemd.so.0 lacks sd-bus";
            return false;
        }
        return true;
    }
};

std::string own_cgroup() {
    std::ifstream f("/proc/self/cgroup");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return {};
}

bool ask(std::string& why) {
    if (::geteuid() == 0) {
        why = "root has the system's cgroups";
        return false;
    }
    const char* rt = std::getenv("XDG_RUNTIME_DIR");
    if (!std::getenv("DBUS_SESSION_BUS_ADDRESS") && !(rt && ::access((std::string(rt) + "/bus").c_str(), F_OK) == 0)) {
        why =
            "no systemd user manager is reachable (no $DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus); "
            "to have one at boot: loginctl enable-linger " +
            std::to_string(::getuid());
        return false;
    }
    SdBus sd;
    if (!sd.load(why)) return false;
    sd_bus* bus = nullptr;
    int r = sd.open_user(&bus);
    if (r < 0) {
        why = std::string("the user manager's bus: ") + std::strerror(-r);
        return false;
    }
    char name[96];
    std::snprintf(name, sizeof name, "stockade-%d-%llx.scope", ::getpid(),
                  static_cast<unsigned long long>(monotonic_ns() & 0xffffffffull));
    sd_bus_message* m = nullptr;
    sd_bus_message* reply = nullptr;
    sd_bus_error err = SD_BUS_ERROR_NULL;
    r = sd.new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "StartTransientUnit");
    if (r >= 0) r = sd.append(m, "ss", name, "fail");
    if (r >= 0) r = sd.open_container(m, 'a', "(sv)");
    if (r >= 0) r = sd.append(m, "(sv)", "Description", "s", "stockade: jails with delegated limits");
    if (r >= 0) r = sd.append(m, "(sv)", "Delegate", "b", 1);
    if (r >= 0) r = sd.append(m, "(sv)", "PIDs", "au", 1, static_cast<uint32_t>(::getpid()));
    if (r >= 0) r = sd.append(m, "(sv)", "CollectMode", "s", "inactive-or-failed");
    if (r >= 0) r = sd.close_container(m);
    if (r >= 0) r = sd.append(m, "a(sa(sv))", 0);
    if (r >= 0) r = sd.call(bus, m, 5000000, &err, &reply);
    if (r < 0) why = std::string("StartTransientUnit ") + name + ": " + (err.message ? err.message : std::strerror(-r));
    sd.error_free(&err);
    if (reply) sd.message_unref(reply);
    if (m) sd.message_unref(m);
    sd.close_unref(bus);
    if (r < 0) return false;
    // The job moves us when it runs: wait for /proc/self/cgroup to say so.
    const std::string want = std::string("/") + name;
    for (int i = 0; i < 500; ++i) {
        std::string cg = own_cgroup();
        if (cg.size() >= want.size() && cg.compare(cg.size() - want.size(), want.size(), want) == 0) return true;
        ::usleep(10000);
    }
    why = std::string("the scope ") + name + " did not take this process within 5 s";
    return false;
}

}  // namespace

bool enter_delegated_scope(std::string& why_not) {
    static int state = -1;  // once per process: a server asks at its first jail only
    static std::string why;
    if (state < 0) state = ask(why) ? 1 : 0;
    if (!state) why_not = why;
    return state == 1;
}

}  // namespace stockade::supervise
