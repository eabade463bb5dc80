// libFuzzer target for the profile loader: any bytes must yield a Policy or a
// ProfileError, never a crash, hang or sanitizer report.
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DSTOCKADE_FUZZ=ON && make -C build-fuzz profile_fuzz
//   build-fuzz/fuzz/profile_fuzz fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <string>

#include "profile/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        stockade::profile::load_text(text, "fuzz.toml");
    } catch (const stockade::profile::ProfileError&) {
    }
    return 0;
}
