// Where one HTTP/1.x response ends, read from the bytes as they pass. The
// proxy passes exactly one request per plain-HTTP connection; it asks the
// server to close after it, but a server that keeps the connection open would
// leave the client waiting, so the proxy closes when the response is over:
// after its Content-Length, its last chunk and trailers, or (204, 304, HEAD,
// 1xx interim heads skipped) its head. A response it cannot frame runs until
// the server closes.
#pragma once
#include <cstdint>
#include <string>

namespace stockade::supervise {

class ResponseFraming {
public:
    explicit ResponseFraming(bool head_request) : head_request_(head_request) {}
    // Feeds bytes from the server; returns how many of them belong to the
    // response (the rest, if any, is past its end).
    size_t feed(const char* p, size_t n);
    bool done() const { return state_ == State::Done; }

private:
    // Adds c to the current line; true at its '\n' (line_ then holds it).
    bool take_line(char c);
    enum class State { Head, Body, ChunkSize, ChunkData, ChunkCrlf, Trailers, UntilClose, Done };
    void head_done();

    bool head_request_;
    State state_ = State::Head;
    std::string line_;   // the head so far, or the current chunk-size / trailer line
    uint64_t left_ = 0;  // body or chunk bytes still to come
};

}  // namespace stockade::supervise
