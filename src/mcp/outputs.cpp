#include "mcp/outputs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "util/fd.hpp"

namespace stockade::mcp {
namespace {

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

std::string utf8_head(const std::string& s, size_t n) {
    if (s.size() <= n) return s;
    size_t end = n;
    while (end > 0 && continuation(s[end])) --end;
    return s.substr(0, end);
}

std::string utf8_tail(const std::string& s, size_t n) {
    if (s.size() <= n) return s;
    size_t start = s.size() - n;
    while (start < s.size() && continuation(s[start])) ++start;
    return s.substr(start);
}

Outputs::~Outputs() {
    for (const auto& e : entries_) ::unlink(e.file.c_str());
}

std::vector<std::string> Outputs::keep(const std::string& stream, const std::string& data) {
    if (dir_.empty() || data.size() > kTotal) return {};
    while (!entries_.empty() && total_ + data.size() > kTotal) {
        ::unlink(entries_.front().file.c_str());
        total_ -= entries_.front().bytes;
        entries_.pop_front();
    }
    Entry e;
    const std::string n = std::to_string(next_++);
    e.file = dir_ + "/output-" + n + "-" + stream;
    e.uri_base = "stockade://output/" + n + "/" + stream + "/";
    e.bytes = data.size();
    UniqueFd fd(::open(e.file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return {};
    for (size_t off = 0; off < data.size();) {
        ssize_t w = ::write(fd.get(), data.data() + off, data.size() - off);
        if (w <= 0) {
            ::unlink(e.file.c_str());
            return {};
        }
        off += static_cast<size_t>(w);
    }
    std::vector<std::string> uris;
    for (size_t part = 0; part * kPart < data.size(); ++part) uris.push_back(e.uri_base + std::to_string(part));
    total_ += e.bytes;
    entries_.push_back(std::move(e));
    return uris;
}

std::optional<std::string> Outputs::read(const std::string& uri) const {
    for (const auto& e : entries_) {
        if (uri.compare(0, e.uri_base.size(), e.uri_base) != 0) continue;
        const std::string p = uri.substr(e.uri_base.size());
        if (p.empty() || p.size() > 9 || p.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
        const size_t part = std::stoul(p);
        if (part * kPart >= e.bytes) return std::nullopt;
        UniqueFd fd(::open(e.file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd) return std::nullopt;
        // Part k runs between two cuts near k MiB, each moved back to the
        // start of a UTF-8 sequence: no character is split, none repeated.
        auto cut = [&](size_t k) -> size_t {
            size_t pos = k * kPart;
            if (pos >= e.bytes) return e.bytes;
            char b[4];
            const size_t back = std::min<size_t>(pos, 3);
            if (::pread(fd.get(), b, back + 1, static_cast<off_t>(pos - back)) != static_cast<ssize_t>(back + 1))
                return pos;
            for (size_t i = back; i > 0 && continuation(b[i]); --i) --pos;
            return pos;
        };
        const size_t from = cut(part), to = cut(part + 1);
        std::string buf(to - from, '\0');
        if (::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(from)) != static_cast<ssize_t>(buf.size()))
            return std::nullopt;
        return buf;
    }
    return std::nullopt;
}

std::vector<std::pair<std::string, size_t>> Outputs::list() const {
    std::vector<std::pair<std::string, size_t>> out;
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
        for (size_t part = 0; part * kPart < it->bytes; ++part)
            out.emplace_back(it->uri_base + std::to_string(part), std::min(kPart, it->bytes - part * kPart));
    return out;
}

}  // namespace stockade::mcp
