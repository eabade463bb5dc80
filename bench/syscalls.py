#!/usr/bin/env python3
"""What the seccomp filter costs.

1. Startup: `stockade run -c pass` with the default profile's filter against the
   same jail with `[unsafe] disable_seccomp`, interleaved, paired medians.
2. Allowed syscalls: a tight os.stat / os.getpid / os.read loop in python,
   timed inside the process (start-up excluded), bare vs in the jail with and
   without the filter.

usage: bench/syscalls.py [--rounds N] [--stockade PATH]
"""
import argparse
import os
import random
import statistics
import subprocess
import time

PY = "/usr/bin/python3"
LOOP = r"""
import os, time
fd = os.open('/dev/zero', os.O_RDONLY)
def work(n):
    for _ in range(n):
        os.stat('/'); os.getpid(); os.read(fd, 64)
work(2000)
best = []
for _ in range(5):
    t = time.perf_counter(); work(20000); best.append(time.perf_counter() - t)
print(min(best) / 60000 * 1e9)
"""


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--stockade", default=os.path.join(os.path.dirname(__file__), "..", "build", "stockade"))
    a = ap.parse_args()
    s = os.path.abspath(a.stockade)
    off = ["--set", "unsafe.disable_seccomp=true"]

    cs = {"filter": [s, "run", "-c", "pass"], "no filter": [s, "run", *off, "-c", "pass"]}
    for argv in cs.values():
        for _ in range(5):
            timed(argv)
    t = {k: [] for k in cs}
    for _ in range(a.rounds):
        for k in random.sample(list(cs), len(cs)):
            t[k].append(timed(cs[k]))
    over = statistics.median([x - y for x, y in zip(t["filter"], t["no filter"])])
    base = statistics.median(t["no filter"])
    print(f"startup, {a.rounds} interleaved rounds: with filter {statistics.median(t['filter']):.2f} ms, "
          f"without {base:.2f} ms, filter adds {over:+.3f} ms (ratio {(base + over) / base:.3f})")

    # Interleaved, many times: this loop is sensitive to whatever else the machine does.
    runs = {"bare": [PY, "-c", LOOP], "jail": [s, "run", "-q", "-c", LOOP], "nofilter": [s, "run", "-q", *off, "-c", LOOP]}
    got = {k: [] for k in runs}
    for _ in range(15):
        for k in random.sample(list(runs), len(runs)):
            got[k].append(float(subprocess.run(runs[k], capture_output=True, text=True, check=True).stdout))
    bare, jail, nofilter = (statistics.median(got[k]) for k in ("bare", "jail", "nofilter"))
    print(f"stat+getpid+read loop, ns per syscall: bare {bare:.0f}, jail without filter {nofilter:.0f}, "
          f"jail with filter {jail:.0f}")
    print(f"  filter vs no filter: {jail / nofilter:.3f}x   jail vs bare: {jail / bare:.3f}x")


if __name__ == "__main__":
    main()
