// The MCP tools stockade offers: their schemas, the serve request each call
// becomes, and the CallToolResult each serve answer becomes (structured
// content, a text block a model reads well, images from /work/out). Every
// result stays far below the 10 MiB an MCP client takes in one message.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mcp/outputs.hpp"

namespace stockade::mcp {

// What the operator decided, as the tools describe it to the model.
struct ToolConfig {
    std::vector<std::string> network_modes;  // allowed; the first is the default
    uint64_t wall_ms = 0;                    // the profile's time limit per run or cell (0: none)
};

// Inline: stdout and stderr each to this many bytes (head and tail), twice
// over (text and structured content); images to these.
constexpr size_t kInlineOutput = 256u << 10;
constexpr size_t kMaxImages = 4;
constexpr size_t kMaxImagesB64 = 4u << 20;

// tools/list's answer.
nlohmann::json tool_list(const ToolConfig& cfg);

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
ServeCall to_serve(const std::string& tool, const nlohmann::json& args, const ToolConfig& cfg);

// serve's answer as a CallToolResult. Output over the inline bound is kept
// whole in `outputs` and named by resource links.
nlohmann::json to_result(const std::string& tool, const nlohmann::json& answer, const ServeCall& call,
                         const ToolConfig& cfg, Outputs& outputs);
nlohmann::json tool_error(const std::string& message);

// The image type of these bytes by their magic numbers (PNG, JPEG, GIF,
// WebP), or empty. Never SVG: it is a document that can carry script.
std::string image_type(const std::string& bytes);

}  // namespace stockade::mcp
