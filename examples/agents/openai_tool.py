"""A function tool for an OpenAI-style tool-calling loop: the JSON schema to
send with the request, and the dispatch code for the model's tool calls.
No SDK: the messages are the plain dicts the chat APIs use.

    python3 openai_tool.py      # runs one simulated tool call
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import stockade  # noqa: E402

RUN_PYTHON_TOOL = {
    "type": "function",
    "function": {
        "name": "run_python",
        "description": "Run Python 3 code in an isolated jail (no host files, no network) and return its output.",
        "parameters": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "the Python source to run"},
                "files": {"type": "object", "additionalProperties": {"type": "string"},
                          "description": "input files, relative path -> text"},
            },
            "required": ["code"],
            "additionalProperties": False,
        },
    },
}


def dispatch(tool_call, pool=None):
    """One tool call from the model -> the tool message to send back."""
    if tool_call["function"]["name"] != "run_python":
        content = f"unknown tool {tool_call['function']['name']}"
    else:
        args = json.loads(tool_call["function"]["arguments"] or "{}")
        try:
            r = stockade.run(code=args["code"], files=args.get("files"), timeout=30, pool=pool)
            content = json.dumps({"status": r.status, "exit_code": r.exit_code,
                                  "stdout": r.stdout[-20000:], "stderr": r.stderr[-20000:]})
        except stockade.StockadeError as e:
            content = json.dumps({"status": "error", "message": e.message})
    return {"role": "tool", "tool_call_id": tool_call["id"], "content": content}


if __name__ == "__main__":
    # What a model's reply with a tool call looks like.
    call = {"id": "call_1", "type": "function",
            "function": {"name": "run_python",
                         "arguments": json.dumps({"code": "print(sum(range(10)))"})}}
    print(dispatch(call)["content"])
