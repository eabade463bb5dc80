#include <doctest/doctest.h>

#include <string>

#include "supervise/http_framing.hpp"

using stockade::supervise::ResponseFraming;

namespace {
// How many bytes of `in` belong to the first response, fed `chunk` bytes at a time.
size_t frame(const std::string& in, bool head = false, size_t chunk = 1) {
    ResponseFraming f(head);
    size_t taken = 0;
    for (size_t i = 0; i < in.size() && !f.done(); i += chunk) taken += f.feed(in.data() + i, std::min(chunk, in.size() - i));
    return f.done() ? taken : std::string::npos;
}
}  // namespace

TEST_CASE("response framing: one response, and nothing past it") {
    const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmug!";
    const std::string cl = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    const std::string chunked =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n";
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n" + cl;
    const std::string empty = "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n";
    for (size_t chunk : {1, 3, 1000}) {
        CAPTURE(chunk);
        CHECK(frame(cl + next, false, chunk) == cl.size());
        CHECK(frame(chunked + next, false, chunk) == chunked.size());
        CHECK(frame(interim + next, false, chunk) == interim.size());
        CHECK(frame(empty + next, false, chunk) == empty.size());
        CHECK(frame("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + next, true, chunk) ==
              std::string("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n").size());
    }
    // No length: the response runs until the server closes.
    CHECK(frame("HTTP/1.0 200 OK\r\n\r\nall of it") == std::string::npos);
    CHECK(frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == std::string::npos);
}
