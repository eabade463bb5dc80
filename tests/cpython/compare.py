#!/usr/bin/env python3
"""Runs a selection of CPython's own regression tests (Debian's
libpython3.11-testsuite) outside and inside the jail, and compares them test by
test: how many pass in each place, and which ones differ.

usage: tests/cpython/compare.py [--stockade build/stockade] [--out FILE.md] [MODULE ...]
"""
import argparse
import collections
import os
import re
import subprocess
import sys
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
    for mod in mods:
        base = ["/usr/bin/python3", "-m", "test", "-v", mod]
        out_o, t_o = run(base, a.timeout)
        # In the jail: the default profile, with /tmp as the working directory
        # (regrtest writes its scratch files to the cwd; /work is read-only).
        # The default limits, except the clocks: some modules take minutes.
        out_i, t_i = run([os.path.abspath(a.stockade), "exec", "--cwd", "/tmp", "-v", "--timeout", "15m", "--cpu-time",
                          "15m", "--", *base], a.timeout)
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
              + (f"   refused: {', '.join(refused)}" if refused else ""), flush=True)
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
