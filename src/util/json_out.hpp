// Writing JSON for a peer (a client's answer, a runner's task, an MCP
// message): the same bytes as nlohmann's dump(-1, ' ', false, replace).
// nlohmann encodes a string a byte at a time through a UTF-8 decoder: about
// 40 ms for 7 MiB of code here, on the loop every client waits on. Here a run
// of bytes with nothing to escape is copied whole; a string that is not valid
// UTF-8 (a task's output may be any bytes) is left to nlohmann's replacement.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace stockade {

// Appends v's compact text to out.
void append_json(std::string& out, const nlohmann::json& v);
std::string dump_json(const nlohmann::json& v);

}  // namespace stockade
