// The MCP tools stockade offers: their schemas, the serve request each call
// becomes, and the CallToolResult each serve answer becomes (structured
// content, a text block a model reads well, images from /work/out).
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace stockade::mcp {

// tools/list's answer; network: the modes the operator allows (first: default).
nlohmann::json tool_list(const std::vector<std::string>& network_modes);

struct ServeCall {
    nlohmann::json request;  // for serve (no id yet)
    std::string mode;        // which server
};

// A tools/call's arguments as a serve request. Throws ToolError (the model's
// mistake: an isError result, not a protocol error) or UnknownTool.
struct ToolError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct UnknownTool : std::runtime_error {
    using std::runtime_error::runtime_error;
};
ServeCall to_serve(const std::string& tool, const nlohmann::json& args, const std::vector<std::string>& network_modes);

// serve's answer as a CallToolResult.
nlohmann::json to_result(const std::string& tool, const nlohmann::json& answer);
nlohmann::json tool_error(const std::string& message);

}  // namespace stockade::mcp
