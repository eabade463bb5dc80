#include <doctest/doctest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "supervise/memory.hpp"
#include "util/clock.hpp"

using namespace stockade;

TEST_CASE("a process tree's PSS counts its children, and the walk stops at its deadline") {
    // A child holding 32 MiB of its own, below this process.
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        void* m = ::mmap(nullptr, 32 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) std::memset(m, 1, 32 << 20);
        (void)!::write(ready[1], "x", 1);
        ::pause();
        ::_exit(0);
    }
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    const uint64_t far = monotonic_ns() + 10'000'000'000ull;
    const auto own = supervise::process_pss_bytes(::getpid());
    const auto tree = supervise::tree_pss_bytes(::getpid(), far);
    REQUIRE(own.has_value());
    REQUIRE(tree.has_value());
    CHECK(tree->complete);
    CHECK(tree->bytes >= *own + (32u << 20));
    // Out of time before it began: nothing read, and said so.
    const auto cut = supervise::tree_pss_bytes(::getpid(), 0);
    REQUIRE(cut.has_value());
    CHECK_FALSE(cut->complete);
    CHECK(cut->bytes == 0);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    // A pid that is gone has no figure.
    CHECK_FALSE(supervise::tree_pss_bytes(child, far).has_value());
    ::close(ready[0]);
    ::close(ready[1]);
}
