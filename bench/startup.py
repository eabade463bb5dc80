#!/usr/bin/env python3
"""Startup cost of `python3 -c pass` through each jail, against bare python3.

Runs are interleaved (one of each per round, in a shuffled order) so that
machine noise hits every contender alike; the overhead is the median of the
per-round differences against bare python3 in the same round.

usage: bench/startup.py [--rounds N] [--stockade PATH] [--json FILE]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

PY = "/usr/bin/python3"


def contenders(stockade):
    c = {"bare python3": [PY, "-c", "pass"]}
    if shutil.which("unshare"):
        c["unshare -Urmpfn --ipc --uts (namespaces only)"] = [
            "unshare", "-Urmpf", "--net", "--ipc", "--uts", "--kill-child", PY, "-c", "pass"]
    c["stockade run -c pass"] = [stockade, "run", "-c", "pass"]
    # The whole default profile (namespaces, root, seccomp, Landlock, rlimits,
    # output relay) but no cgroup: the figure to hold against bubblewrap.
    c["stockade run, cgroup limits off"] = [stockade, "run", "--set", "limits.memory=0", "--set", "limits.pids=0",
                                            "--set", "limits.cpu=0", "--set", "limits.cpu_time=0", "-c", "pass"]
    c["stockade run -p strict -c pass"] = [stockade, "run", "-p", "strict", "-c", "pass"]
    bwrap = shutil.which("bwrap")
    if bwrap:
        # The same isolation stockade's default profile gives, as far as bwrap can say it.
        c["bubblewrap (equivalent isolation)"] = [
            bwrap, "--unshare-all", "--share-net" if False else "--unshare-net", "--die-with-parent", "--new-session",
            "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--tmpfs", "/home/sandbox", "--dir", "/work", "--chdir", "/work",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/home/sandbox",
            "--hostname", "stockade", "--remount-ro", "/",
            PY, "-c", "pass"]
    return c


def run_once(argv):
    t = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--stockade", default=os.path.join(os.path.dirname(__file__), "..", "build", "stockade"))
    ap.add_argument("--json")
    args = ap.parse_args()
    cs = contenders(os.path.abspath(args.stockade))
    names = list(cs)
    for n in names:  # warm caches
        for _ in range(5):
            run_once(cs[n])
    times = {n: [] for n in names}
    for _ in range(args.rounds):
        order = names[:]
        random.shuffle(order)
        for n in order:
            times[n].append(run_once(cs[n]))
    bare = times["bare python3"]
    base = statistics.median(bare)
    print(f"python3 -c pass, {args.rounds} interleaved rounds, {os.cpu_count()} cpus, uid {os.geteuid()}")
    print(f"{'contender':52} {'median ms':>10} {'overhead ms':>12} {'ratio':>7}")
    rows = []
    for n in names:
        med = statistics.median(times[n])
        over = statistics.median([a - b for a, b in zip(times[n], bare)])
        ratio = (base + over) / base
        rows.append({"name": n, "median_ms": med, "overhead_ms": over, "ratio": ratio})
        print(f"{n:52} {med:10.2f} {over:+12.2f} {ratio:7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
