// Owning file descriptor: closed on every path, errors included.
#pragma once
#include <unistd.h>

#include <string>
#include <utility>

namespace stockade {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct Pipe {
    UniqueFd read, write;
};
// pipe2(O_CLOEXEC), throws on failure.
Pipe make_pipe(const char* what);

// A small file's text (procfs, sysfs): at most max bytes, "" if it cannot be
// opened. For files whose absence is an answer, not an error.
std::string read_small_file(const std::string& path, size_t max = 1 << 20);

// Writes all of buf or throws; retries on EINTR and short writes.
void write_all(int fd, const void* buf, size_t len, const char* what);

}  // namespace stockade
