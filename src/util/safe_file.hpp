// Files that stockade writes on the host (--result, --learn). The supervisor
// may be root, and the jail may own the directory the caller named (a --rw
// bind), so a plain open(O_CREAT|O_TRUNC) would follow whatever link the jail
// planted there. Instead the directory is pinned by fd before the jail exists,
// and the file is made as a fresh temporary in it and renamed over the name:
// rename replaces a planted symlink rather than following it, and a reader
// never sees a half-written or stale file.
//
// Paths under /dev and /proc (/dev/stdout, /dev/fd/3, /proc/self/fd/1) are the
// caller's own descriptors spelled as paths: the jail can create nothing
// there, so they are opened once, at start, and written through (appending).
#pragma once
#include <string>

#include "util/fd.hpp"

namespace stockade {

class HostFile {
public:
    HostFile() = default;
    // Opens the directory of `path` now; throws Error (with the path) if it is
    // not there. With `remove_stale`, an earlier file at `path` is removed at
    // once, so a caller never reads an old result for this run.
    HostFile(const std::string& path, bool remove_stale);

    bool empty() const { return !dir_ && !through_; }
    const std::string& path() const { return path_; }
    // Writes the whole text as a regular file, mode 0644, atomically. Throws Error.
    void write(const std::string& text) const;

private:
    std::string path_, base_;
    UniqueFd dir_;
    UniqueFd through_;  // a /dev or /proc path, opened at start
};

}  // namespace stockade
