#!/usr/bin/env python3
"""What limits cost, and whether stockade holds up under load.

1. Startup with the default profile's limits (a cgroup, where one can be had)
   against the same run with every cgroup limit lifted: interleaved, paired.
2. Concurrency: N workers running `stockade run -c pass` back to back for T
   seconds, runs per second against bare python3, failures, and leftovers
   (stockade cgroups, processes) afterwards.

usage: bench/limits.py [--rounds N] [--workers 2] [--seconds 10] [--stockade PATH]
"""
import argparse
import json
import concurrent.futures as cf
import os
import random
import statistics
import subprocess
import time

PY = "/usr/bin/python3"
NO_CGROUP = ["--set", "limits.memory=0", "--set", "limits.pids=0", "--set", "limits.cpu=0", "--set",
             "limits.cpu_time=0"]


def timed(argv):
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000, r.returncode


def leftovers():
    cgs = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        cgs += [d for d in dirs if d.startswith("stockade-")]
    procs = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if b"stockade" in f.read().split(b"\0")[0]:
                        procs.append(p)
            except OSError:
                pass
    return cgs, procs


def worker(argv, seconds):
    end = time.time() + seconds
    n = fails = 0
    while time.time() < end:
        _, rc = timed(argv)
        n += 1
        fails += rc != 0
    return n, fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--stockade", default=os.path.join(os.path.dirname(__file__), "..", "build", "stockade"))
    a = ap.parse_args()
    s = os.path.abspath(a.stockade)
    on, off = [s, "run", "-c", "pass"], [s, "run", *NO_CGROUP, "-c", "pass"]
    out = subprocess.run([s, "run", "--result", "/dev/stdout", "-q", "-c", "pass"], capture_output=True, text=True).stdout
    cg = json.loads(out).get("cgroup")
    backend = f"a cgroup {cg}" if cg else "no cgroup (rlimits)"
    for argv in (on, off):
        for _ in range(5):
            timed(argv)
    t = {"on": [], "off": []}
    for _ in range(a.rounds):
        for k in random.sample(["on", "off"], 2):
            t[k].append(timed(on if k == "on" else off)[0])
    diff = statistics.median([x - y for x, y in zip(t["on"], t["off"])])
    base = statistics.median(t["off"])
    print(f"startup, {a.rounds} interleaved rounds, limits held by {backend}: with {statistics.median(t['on']):.2f} ms, "
          f"without {base:.2f} ms, limits add {diff:+.3f} ms (ratio {(base + diff) / base:.3f})")

    for name, argv in (("bare python3", [PY, "-c", "pass"]), ("stockade run -c pass", on)):
        with cf.ThreadPoolExecutor(a.workers) as ex:
            res = list(ex.map(lambda _: worker(argv, a.seconds), range(a.workers)))
        n, fails = sum(r[0] for r in res), sum(r[1] for r in res)
        print(f"{a.workers} workers x {a.seconds:.0f} s, {name}: {n / a.seconds:.1f} runs/s, {fails} failures")
    time.sleep(0.5)
    cgs, procs = leftovers()
    print(f"leftovers afterwards: {len(cgs)} stockade cgroups, {len(procs)} stockade processes")


if __name__ == "__main__":
    main()
