"""The Python client against the real binary (STOCKADE_BIN or PATH)."""
import os
import subprocess
import sys
import tempfile
import time

import pytest

import stockade


def test_run_returns_a_typed_result():
    r = stockade.run(code="import sys\nprint('out'); print('err', file=sys.stderr); sys.exit(4)")
    assert isinstance(r, stockade.Result)
    assert (r.status, r.exit_code, r.ok) == ("exit_nonzero", 4, False)
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"
    assert r.wall_ms > 0
    assert stockade.run(code="pass").ok


def test_files_args_and_stdin():
    r = stockade.run(code="import sys\nprint(open('in/a.txt').read(), open('b.bin','rb').read(), sys.argv[1:], input())",
                     files={"in/a.txt": "text", "b.bin": b"\x00\x01"}, args=["x", "y"], stdin="typed\n")
    assert r.ok, r
    assert r.stdout == "text b'\\x00\\x01' ['x', 'y'] typed\n"


def test_timeout_and_violations():
    r = stockade.run(code="import time; time.sleep(10)", timeout=0.5)
    assert r.status == "timeout_wall"
    r = stockade.run(code="import ctypes\nprint(ctypes.CDLL(None).unshare(0x10000000))")
    assert r.stdout == "-1\n"
    assert any(v.syscall == "unshare" for v in r.violations)


def test_host_files_stay_out_unless_bound():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        secret = os.path.join(d, "secret.txt")
        with open(secret, "w") as f:
            f.write("s3cret")
        os.chmod(secret, 0o644)
        code = f"print(open({secret!r}).read())"
        # Outside the jail the same code reads it.
        assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "s3cret\n"
        r = stockade.run(code=code)
        assert "FileNotFoundError" in r.stderr
        r = stockade.run(code="print(open('/data/secret.txt').read())", ro=[f"{d}:/data"])
        assert r.stdout == "s3cret\n"


def test_no_shell_anywhere():
    with tempfile.TemporaryDirectory() as d:
        marker = os.path.join(d, "pwned")
        tricky = f"$(touch {marker}); `touch {marker}`; echo > {marker}"
        r = stockade.run(code=f"import sys; print(sys.argv[1])", args=[tricky])
        assert r.stdout == tricky + "\n"
        assert not os.path.exists(marker)


def test_network_none():
    r = stockade.run(code="import socket\ntry:\n    socket.socket(socket.AF_INET)\n    print('made')\n"
                          "except OSError as e:\n    print('refused')", network="none")
    assert r.stdout == "refused\n"


def test_stockade_failures_raise_with_its_line():
    with pytest.raises(stockade.StockadeError) as e:
        stockade.run(code="pass", profile="no-such-profile")
    assert "unknown profile" in e.value.message
    with pytest.raises(stockade.StockadeError) as e:
        stockade.run(code="pass", ro=["/no/such/dir:/data"])
    assert "/no/such/dir" in e.value.message


def test_binary_is_found_through_stockade_bin(monkeypatch):
    monkeypatch.setenv("STOCKADE_BIN", "/nonexistent/stockade")
    with pytest.raises((stockade.StockadeError, OSError)):
        stockade.run(code="pass")


def test_session_keeps_state():
    with stockade.Session() as s:
        assert s.run("x = 41").ok
        r = s.run("x + 1")
        assert r.value == "42"
        r = s.run("1 / 0")
        assert r.error["type"] == "ZeroDivisionError"
        r = s.run("open('f.txt').read()", files={"f.txt": "in"}, return_files=["f.txt"])
        assert (r.value, r.files) == ("'in'", {"f.txt": "in"})
        sock = s.pool._conn.path
    # The private server went with the session.
    with pytest.raises(stockade.StockadeError):
        stockade.connect(sock)


def test_pool_runs_warm_and_isolated():
    with stockade.Pool(size=2) as pool:
        pool.wait_warm(2)
        r = pool.run(code="open('/tmp/left', 'w').write('x'); print('wrote')")
        assert r.ok and r.warm
        pool.wait_warm(1)
        r = pool.run(code="import os; print(os.path.exists('/tmp/left'))")
        assert r.stdout == "False\n"
        r = stockade.run(code="print(2 + 2)", pool=pool)
        assert r.stdout == "4\n"
        with pool.session() as s:
            s.run("y = 'kept'")
            assert s.run("y").value == "'kept'"
        st = pool.stats()
        assert st["served"] >= 3
        assert "memory" not in st
        pool.wait_warm(1)
        mem = pool.stats(memory=True)["memory"]
        assert mem["warm_pss_bytes"] and all(b > (1 << 20) for b in mem["warm_pss_bytes"]), mem


def test_connect_to_a_running_server():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        sock = os.path.join(d, "serve.sock")
        p = subprocess.Popen([stockade.find_binary(), "serve", "--socket", sock, "--pool", "1"],
                             stderr=subprocess.DEVNULL)
        try:
            for _ in range(1000):
                try:
                    pool = stockade.connect(sock)
                    break
                except stockade.StockadeError:
                    time.sleep(0.01)
            assert pool.run(code="print('via serve')").stdout == "via serve\n"
            with pytest.raises(stockade.StockadeError) as e:
                pool.run(code="1", limits={"memory": "100G"})
            assert e.value.code == "bad_request"
            pool.close()
        finally:
            p.terminate()
            p.wait(30)


def test_installable_as_a_wheel(tmp_path):
    # `pip install ./python` builds this wheel; importing from it proves its contents.
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    work = tmp_path / "src"
    import shutil
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(work), "-w", str(tmp_path / "dist"), "--no-deps",
                        "--no-index", "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp_path / "dist").glob("stockade-*.whl"))
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import stockade; "
                        "print(stockade.__file__, stockade.run(code='print(7)').stdout)", str(wheel)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert ".whl" in r.stdout and r.stdout.rstrip().endswith("7")
