#!/usr/bin/env python3
"""Runs a selection of CPython's own regression tests (Debian's
libpython3.11-testsuite) outside and inside the jail, and compares them test by
test: how many pass in each place, and which ones differ.

With --serve, "inside" is a task of `stockade serve` instead of `stockade
exec`: a fork of the server's warm template (python with the runner loaded),
which runs the module through runpy as the task's code.

usage: tests/cpython/compare.py [--stockade build/stockade] [--serve] [--out FILE.md] [MODULE ...]
"""
import argparse
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

DEFAULT = ["test_os", "test_threading", "test_subprocess", "test_json", "test_re", "test_math", "test_tempfile",
           "test_mmap", "test_asyncio", "test_signal", "test_select", "test_fcntl", "test_shutil", "test_pathlib",
           "test_hashlib", "test_posix", "test_sqlite3", "test_io", "test_time"]
# test_socket is left out: on these loopback-only machines it hangs outside the jail too.
RESULT = re.compile(r"^(test\w*) \(([\w.]+)\)(?:\n.*?)? \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)$",
                    re.M)


def run(argv, timeout):
    t = time.time()
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                           timeout=timeout, stdin=subprocess.DEVNULL)
        out = p.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\n[timed out]\n"
    return out, time.time() - t


# The same limits as the exec run below, for every task of the server.
JAIL_OPTS = ["--cwd", "/tmp", "--timeout", "15m", "--cpu-time", "15m"]


class Served:
    """One `stockade serve` (pool 1) whose tasks are the modules' runs."""

    def __init__(self, stockade):
        self.dir = tempfile.mkdtemp(prefix="stockade-cpython-")
        path = os.path.join(self.dir, "serve.sock")
        self.p = subprocess.Popen([stockade, "serve", "--socket", path, "--pool", "1", *JAIL_OPTS],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                time.sleep(0.02)
        else:
            raise SystemExit("stockade serve did not start")
        self.f = self.s.makefile("rb")
        self.n = 0

    def call(self, req):
        self.n += 1
        req["id"] = self.n
        self.s.sendall((json.dumps(req) + "\n").encode())
        return json.loads(self.f.readline())

    def run(self, mod, timeout):
        t = time.time()
        while self.call({"op": "stats"})["warm"] < 1:
            time.sleep(0.05)
        forks = self.call({"op": "stats"}).get("template_forks", 0)
        code = ("import runpy, sys\n"
                f"sys.argv = ['python3 -m test', '-v', {mod!r}]\n"
                "runpy.run_module('test', run_name='__main__', alter_sys=True)\n")
        a = self.call({"op": "run", "code": code, "timeout": timeout})
        out = (a.get("stdout") or "") + (a.get("stderr") or "")
        if a.get("error"):
            out += f"\n[serve: {a['error']}]\n"
        # As `stockade exec` prints them, for the report's "refused" column.
        for v in a.get("violations") or []:
            out += f"\nstockade: refused {v.get('syscall')}(\n"
        # The task must have run in a fork of the template, not a jail of its own.
        if not a.get("warm") or self.call({"op": "stats"}).get("template_forks", 0) <= forks:
            out += "\n[not a template's fork]\n"
        return out, time.time() - t

    def close(self):
        self.s.close()
        self.p.terminate()
        self.p.wait()
        os.rmdir(self.dir)


def parse(out):
    res = {}
    for m in RESULT.finditer(out):
        status = m.group(3)
        status = "skipped" if status.startswith("skipped") else status
        res[f"{m.group(2)}.{m.group(1)}"] = status
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stockade", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "stockade"))
    ap.add_argument("--serve", action="store_true", help="inside: a task of stockade serve (a template's fork)")
    ap.add_argument("--out")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("modules", nargs="*")
    a = ap.parse_args()
    mods = a.modules or DEFAULT
    if not os.path.isdir("/usr/lib/python3.11/test/support"):
        print("skipped: CPython's test suite is not installed (apt-get install libpython3.11-testsuite)")
        return 0
    rows = []
    totals = collections.Counter()
    diffs = []
    served = Served(os.path.abspath(a.stockade)) if a.serve else None
    for mod in mods:
        base = ["/usr/bin/python3", "-m", "test", "-v", mod]
        out_o, t_o = run(base, a.timeout)
        # In the jail: the default profile, with /tmp as the working directory
        # (regrtest writes its scratch files to the cwd; /work is read-only).
        # The default limits, except the clocks: some modules take minutes.
        if served:
            out_i, t_i = served.run(mod, a.timeout)
        else:
            out_i, t_i = run([os.path.abspath(a.stockade), "exec", *JAIL_OPTS, "-v", "--", *base], a.timeout)
        o, i = parse(out_o), parse(out_i)
        po = sum(1 for s in o.values() if s in ("ok", "expected failure"))
        pi = sum(1 for s in i.values() if s in ("ok", "expected failure"))
        rows.append((mod, len(o), po, len(i), pi, t_o, t_i))
        totals.update(run_o=len(o), pass_o=po, run_i=len(i), pass_i=pi)
        refused = sorted(set(re.findall(r"^stockade: refused (\w+)\(", out_i, re.M)))
        for name in sorted(set(o) | set(i)):
            if o.get(name) != i.get(name):
                diffs.append((mod, name, o.get(name, "-"), i.get(name, "-")))
        print(f"{mod:16} outside {po}/{len(o)} passed ({t_o:.0f}s)   inside {pi}/{len(i)} passed ({t_i:.0f}s)"
              + (f"   refused: {', '.join(refused)}" if refused else "")
              + ("   NOT A TEMPLATE'S FORK" if "[not a template's fork]" in out_i else ""), flush=True)
    if served:
        served.close()
    lines = ["| module | outside: passed / run | inside: passed / run |", "|---|---|---|"]
    for mod, ro, po, ri, pi, _, _ in rows:
        lines.append(f"| {mod} | {po} / {ro} | {pi} / {ri} |")
    lines.append(f"| **total** | **{totals['pass_o']} / {totals['run_o']}** | **{totals['pass_i']} / {totals['run_i']}** |")
    lines.append("")
    lines.append("Tests whose result differs (module, test, outside, inside):")
    lines.append("")
    for d in diffs:
        lines.append(f"- {d[0]} `{d[1]}`: {d[2]} -> {d[3]}")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
