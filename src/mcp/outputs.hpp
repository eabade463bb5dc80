// Output too large for one MCP message, kept whole for the model to read in
// parts. The SDK's stdio client refuses any message over 10 MiB (and drops
// the server with it), so a result carries only the head and tail of stdout
// and stderr; the whole of each stays here, as files in mcp's private
// directory, readable as resources of 1 MiB each. Bounded: the oldest go
// first past 256 MiB in all.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace stockade::mcp {

class Outputs {
public:
    static constexpr size_t kPart = 1u << 20;
    static constexpr size_t kTotal = 256u << 20;

    explicit Outputs(std::string dir) : dir_(std::move(dir)) {}
    ~Outputs();
    Outputs(const Outputs&) = delete;
    Outputs& operator=(const Outputs&) = delete;

    // Keeps `data`; returns the URIs of its parts (empty if it cannot).
    std::vector<std::string> keep(const std::string& stream, const std::string& data);
    // One part, by URI; nullopt if unknown or gone.
    std::optional<std::string> read(const std::string& uri) const;
    // Every part kept, newest first: {uri, bytes}.
    std::vector<std::pair<std::string, size_t>> list() const;

private:
    struct Entry {
        std::string uri_base, file;
        size_t bytes = 0;
    };
    std::string dir_;
    std::deque<Entry> entries_;
    size_t total_ = 0;
    uint64_t next_ = 1;
};

// A cut of s to at most n bytes that does not split a UTF-8 sequence,
// from the front (head) or the back (tail).
std::string utf8_head(const std::string& s, size_t n);
std::string utf8_tail(const std::string& s, size_t n);

}  // namespace stockade::mcp
