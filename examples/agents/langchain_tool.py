"""A LangChain-style tool over the stockade client. It has the interface
LangChain's `BaseTool` has (name, description, args_schema, invoke/run), so
an agent can use it as it is; it runs without LangChain installed. With
LangChain, wrap it: `StructuredTool.from_function(StockadePythonTool().run,
name=..., description=...)`.

    python3 langchain_tool.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import stockade  # noqa: E402


class StockadePythonTool:
    name = "python_repl"
    description = ("A Python shell in an isolated jail. Input is Python code; use print() to see values. "
                   "State persists between calls.")
    args_schema = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}

    def __init__(self, **server_options):
        self._session = None
        self._options = server_options

    def run(self, code: str) -> str:
        if self._session is None:
            self._session = stockade.Session(**self._options)
        r = self._session.run(code, timeout=30)
        out = r.stdout + r.stderr
        if r.value is not None:
            out += r.value + "\n"
        if r.error:
            out += r.error["traceback"]
        return out or "(no output)"

    def invoke(self, tool_input):
        code = tool_input["code"] if isinstance(tool_input, dict) else str(tool_input)
        return self.run(code)

    def close(self):
        if self._session:
            self._session.close()
            self._session = None


if __name__ == "__main__":
    tool = StockadePythonTool()
    try:
        print(tool.invoke({"code": "total = 40"}), end="")
        print(tool.invoke("total + 2"), end="")
    finally:
        tool.close()
