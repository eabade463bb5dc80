#include "util/proc_title.hpp"

#include <cstring>

namespace stockade {
namespace {
char* g_begin = nullptr;
char* g_end = nullptr;
}  // namespace

void remember_process_block(int argc, char** argv, char** envp) {
    if (argc <= 0 || !argv[0]) return;
    g_begin = argv[0];
    g_end = argv[0] + std::strlen(argv[0]) + 1;
    // Only the strings laid out back to back by the kernel belong to the block.
    auto extend = [](char* s) {
        if (s == g_end) g_end = s + std::strlen(s) + 1;
    };
    for (int i = 1; i < argc; ++i) extend(argv[i]);
    for (char** e = envp; e && *e; ++e) extend(*e);
}

void scrub_process_block(const char* title) noexcept {
    if (!g_begin) return;
    std::memset(g_begin, 0, static_cast<size_t>(g_end - g_begin));
    size_t n = std::strlen(title);
    if (n < static_cast<size_t>(g_end - g_begin)) std::memcpy(g_begin, title, n);
}

}  // namespace stockade
