"""The recipes in examples/agents, run as written."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.environ.get("STOCKADE_EXAMPLES", os.path.join(HERE, "..", "..", "examples", "agents"))
sys.path.insert(0, EXAMPLES)


def run_example(name, *args):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
                          timeout=120)


def test_openai_tool_dispatch():
    import openai_tool
    assert openai_tool.RUN_PYTHON_TOOL["function"]["parameters"]["required"] == ["code"]
    msg = openai_tool.dispatch({"id": "c1", "type": "function", "function": {
        "name": "run_python", "arguments": json.dumps({"code": "print(open('x').read() * 2)", "files": {"x": "ab"}})}})
    assert msg["role"] == "tool" and msg["tool_call_id"] == "c1"
    assert json.loads(msg["content"])["stdout"] == "abab\n"
    out = run_example("openai_tool.py")
    assert json.loads(out.stdout)["stdout"] == "45\n", out.stderr


def test_langchain_style_tool():
    import langchain_tool
    tool = langchain_tool.StockadePythonTool()
    try:
        assert tool.name and tool.description and tool.args_schema["required"] == ["code"]
        tool.invoke({"code": "n = 6"})
        assert tool.invoke("n * 7").strip() == "42"
        assert "NameError" in tool.run("missing")
    finally:
        tool.close()
    assert run_example("langchain_tool.py").stdout.strip().endswith("42")


def test_smolagents_style_executor():
    import smolagents_executor
    ex = smolagents_executor.StockadeExecutor(additional_imports=["math"])
    try:
        ex.send_variables({"xs": [1, 2, 3]})
        value, logs, final = ex("print('sum', sum(xs))\nsum(xs) * 2")
        assert (value, logs, final) == ("12", "sum 6\n", False)
        value, logs, final = ex("final_answer(math.factorial(5))")
        assert (value, final) == ("120", True)
    finally:
        ex.close()
    out = run_example("smolagents_executor.py")
    assert "('12.566', '', True)" in out.stdout, out.stderr


def test_ci_step_fails_the_job_unless_ok(tmp_path):
    os.chmod(tmp_path, 0o755)
    good = tmp_path / "good.py"
    good.write_text("print('fine')\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nos.kill(os.getpid(), 9)\n")
    hog = tmp_path / "hog.py"
    hog.write_text("x = bytearray(4 << 30)\n")
    for p in (good, bad, hog):
        os.chmod(p, 0o644)
    step = os.path.join(EXAMPLES, "ci_step.sh")
    env = dict(os.environ)
    r = subprocess.run(["sh", step, str(good), str(tmp_path / "r1.json")], capture_output=True, text=True, env=env)
    if "require_cgroup" in r.stdout + r.stderr:
        # Unprivileged with no delegated cgroup: the strict profile fails closed, and so does the job.
        assert r.returncode != 0 and "setup_error" in r.stdout
        env["STOCKADE_PROFILE"] = "python"
        r = subprocess.run(["sh", step, str(good), str(tmp_path / "r1.json")], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and ": ok" in r.stdout, r.stdout + r.stderr
    for script, status in ((bad, "signaled"), (hog, None)):
        r = subprocess.run(["sh", step, str(script), str(tmp_path / "r.json")], capture_output=True, text=True, env=env)
        assert r.returncode != 0, r.stdout
        if status:
            assert status in r.stdout
