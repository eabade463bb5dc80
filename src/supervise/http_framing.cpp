#include "supervise/http_framing.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace stockade::supervise {
namespace {

constexpr size_t kMaxHead = 65536;
constexpr size_t kMaxLine = 4096;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

}  // namespace

void ResponseFraming::head_done() {
    // line_ holds the whole head, "HTTP/1.1 200 OK\r\n...\r\n\r\n".
    const std::string h = lower(line_);
    line_.clear();
    int status = 0;
    if (h.size() > 12 && h.compare(0, 5, "http/") == 0) status = std::atoi(h.c_str() + h.find(' ') + 1);
    if (status >= 100 && status < 200) {
        state_ = State::Head;  // an interim head: the real one follows
        return;
    }
    if (head_request_ || status == 204 || status == 304) {
        state_ = State::Done;
        return;
    }
    auto header = [&](const char* name, std::string& value) {
        const std::string key = std::string("\r\n") + name + ":";
        size_t at = h.find(key);
        if (at == std::string::npos) return false;
        size_t v = at + key.size(), e = h.find("\r\n", v);
        value = h.substr(v, e - v);
        value.erase(0, value.find_first_not_of(" \t"));
        value.erase(value.find_last_not_of(" \t") + 1);
        return true;
    };
    std::string te, cl;
    if (header("transfer-encoding", te)) {
        state_ = te.size() >= 7 && te.compare(te.size() - 7, 7, "chunked") == 0 ? State::ChunkSize : State::UntilClose;
    } else if (header("content-length", cl) && !cl.empty() && cl.size() < 19 &&
               cl.find_first_not_of("0123456789") == std::string::npos) {
        left_ = std::strtoull(cl.c_str(), nullptr, 10);
        state_ = left_ ? State::Body : State::Done;
    } else {
        state_ = State::UntilClose;
    }
}

bool ResponseFraming::take_line(char c) {
    if (c == '\n') return true;
    if (line_.size() > kMaxLine)
        state_ = State::UntilClose;  // no framing to trust past an endless line
    else
        line_ += c;
    return false;
}

size_t ResponseFraming::feed(const char* p, size_t n) {
    size_t i = 0;
    while (i < n && state_ != State::Done) {
        switch (state_) {
            case State::Head: {
                line_ += p[i++];
                if (line_.size() >= 4 && line_.compare(line_.size() - 4, 4, "\r\n\r\n") == 0)
                    head_done();
                else if (line_.size() > kMaxHead)
                    state_ = State::UntilClose;
                break;
            }
            case State::Body: {
                uint64_t take = std::min<uint64_t>(left_, n - i);
                i += take;
                left_ -= take;
                if (!left_) state_ = State::Done;
                break;
            }
            case State::ChunkSize: {
                if (!take_line(p[i++])) break;
                const std::string hex = line_.substr(0, line_.find_first_of(";\r \t"));
                line_.clear();
                if (hex.empty() || hex.size() > 15 ||
                    hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
                    state_ = State::UntilClose;
                    break;
                }
                left_ = std::strtoull(hex.c_str(), nullptr, 16);
                state_ = left_ ? State::ChunkData : State::Trailers;
                break;
            }
            case State::ChunkData: {
                uint64_t take = std::min<uint64_t>(left_, n - i);
                i += take;
                left_ -= take;
                if (!left_) {
                    state_ = State::ChunkCrlf;
                    left_ = 2;
                }
                break;
            }
            case State::ChunkCrlf: {
                ++i;
                if (--left_ == 0) state_ = State::ChunkSize;
                break;
            }
            case State::Trailers: {
                if (!take_line(p[i++])) break;
                const bool empty = line_.empty() || line_ == "\r";
                line_.clear();
                if (empty) state_ = State::Done;
                break;
            }
            case State::UntilClose:
                return n;
            case State::Done:
                break;
        }
    }
    return i;
}

}  // namespace stockade::supervise
