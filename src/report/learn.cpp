#include "report/learn.hpp"

#include "jail_abi.hpp"

namespace stockade::report {

void write_learned_profile(const HostFile& file, const std::string& base, const std::string& command,
                           const std::set<std::string>& used) {
    std::set<std::string> all = used;
    for (const char* own : jail::kLastStepSyscalls) all.insert(own);
    std::string text = "# Written by `stockade --learn` for: " + command + "\n" +
                       "# The syscalls that run used, and no others. Review it before trusting it:\n"
                       "# a run only shows the paths it took.\n"
                       "schema = 1\n"
                       "extends = \"" +
                       base + "\"\n\n[seccomp]\nallow = [\n";
    for (const auto& n : all) text += "    \"" + n + "\",\n";
    text += "]\n";
    file.write(text);
}

}  // namespace stockade::report
