// Bytes in, lines out, in time linear in the bytes: each byte is scanned for
// a newline once, however it arrives (a 64 MiB line in 64 KiB reads used to
// be scanned a thousand times over). A line longer than the cap is an error
// the owner decides about, before it is ever held whole.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace stockade {

class LineBuffer {
public:
    explicit LineBuffer(size_t max_line) : max_(max_line) {}

    void append(const char* p, size_t n) { buf_.append(p, n); }
    // Calls f(std::string_view line) for each complete line (without "\n" or
    // a trailing "\r"; empty lines are skipped) until f returns false.
    template <class F>
    void lines(F&& f) {
        size_t start = 0;
        for (;;) {
            size_t nl = buf_.find('\n', scanned_);
            if (nl == std::string::npos) {
                scanned_ = buf_.size();
                break;
            }
            std::string_view line(buf_.data() + start, nl - start);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            start = scanned_ = nl + 1;
            if (!line.empty() && !f(line)) break;
        }
        buf_.erase(0, start);
        scanned_ -= start;
    }
    // The unfinished line is longer than the cap.
    bool over() const { return buf_.size() > max_; }
    size_t pending() const { return buf_.size(); }
    void clear() {
        buf_.clear();
        scanned_ = 0;
    }

private:
    size_t max_;
    std::string buf_;
    size_t scanned_ = 0;
};

}  // namespace stockade
