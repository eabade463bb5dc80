"""A smolagents-style Python executor over a stockade session: the same
interface as smolagents' local and remote executors (send_variables,
send_tools, __call__(code) -> (output, logs, is_final_answer)), so an agent
built on it can run its code actions in a jail. Runs without smolagents.

    python3 smolagents_executor.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import stockade  # noqa: E402

FINAL = "__stockade_final_answer__"


class StockadeExecutor:
    def __init__(self, additional_imports=(), **server_options):
        self.session = stockade.Session(**server_options)
        prelude = "".join(f"import {m}\n" for m in additional_imports)
        # final_answer(x) ends the agent's loop, as in smolagents.
        prelude += (f"class _Final(Exception):\n    pass\n"
                    f"def final_answer(x):\n    global {FINAL}\n    {FINAL} = x\n    raise _Final()\n")
        self.session.run(prelude)

    def send_variables(self, variables):
        # Values cross as JSON: the jail shares no objects with the host.
        self.session.run("import json\nglobals().update(json.loads(" + repr(json.dumps(variables)) + "))")

    def send_tools(self, tools):
        if tools:
            raise NotImplementedError("host tools cannot be called from inside the jail; pass their results as variables")

    def __call__(self, code_action):
        r = self.session.run(code_action)
        logs = r.stdout + r.stderr
        if r.error and r.error["type"] == "_Final":
            value = self.session.run(FINAL).value
            return value, logs, True
        if r.error:
            raise RuntimeError(r.error["traceback"])
        return r.value, logs, False

    def close(self):
        self.session.close()


if __name__ == "__main__":
    ex = StockadeExecutor(additional_imports=["math"])
    try:
        ex.send_variables({"radius": 2})
        print(ex("area = math.pi * radius ** 2\nprint('computed')"))
        print(ex("final_answer(round(area, 3))"))
    finally:
        ex.close()
