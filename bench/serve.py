#!/usr/bin/env python3
"""`stockade serve` from a client's side: request sent to answer received.

Latency: each round runs one of every contender, in a shuffled order, with
the servers' pools warm before each sample (the figure asked for is that of
a warm pool); p50 and p90 over the rounds.
  - print(1): bare `python3 -c`, `stockade run -c`, and serve (no preload);
  - import numpy; print(1): bare python3, and serve with numpy preloaded;
  - a session cell `x += 1`;
  - opening a session with numpy preloaded (from the warm session jail),
    and opening one cold (a server without --preload, importing numpy in
    the first cell) for comparison.
Throughput: 2 clients back to back for a few seconds each, the same task
(`import numpy; print(1)`, then `print(1)`) through serve, `stockade run`
cold, and bare python3, as ratios to bare python3, with the p50 and p99
latency under that load. Each contender's seconds are cut into windows
(--slices) taken in a shuffled order, so the ratios are of the same minutes.
Throughput also runs each server again with --no-templates (every pool jail
a python of its own, as before templates).
Memory: what each warm jail holds (PSS of its processes), its template, and
the server's RSS.

usage: bench/serve.py [--rounds N] [--seconds S] [--slices N] [--pool N] [--stockade PATH] [--json FILE]
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

PY = "/usr/bin/python3"
NUMPY = "import numpy; print(1)"
POOL = 2  # --pool


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.n = 0

    def call(self, req):
        self.n += 1
        req["id"] = self.n
        self.s.sendall((json.dumps(req) + "\n").encode())
        ans = json.loads(self.f.readline())
        if "error" in ans and ans["error"]:
            if not isinstance(ans["error"], dict) or "code" in ans["error"]:
                raise SystemExit(f"serve: {ans['error']}")
        return ans


class Server:
    def __init__(self, stockade, tmp, name, *args):
        self.path = os.path.join(tmp, name + ".sock")
        self.p = subprocess.Popen([stockade, "serve", "--socket", self.path, "--pool", str(POOL), *args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                self.c = Conn(self.path)
                break
            except OSError:
                time.sleep(0.02)
        else:
            raise SystemExit("serve did not start")
        self.warm()

    def warm(self, n=None, sessions=0):
        n = min(2, POOL) if n is None else n
        for _ in range(3000):
            st = self.c.call({"op": "stats"})
            if st["warm"] >= n and st.get("session_warm", 0) >= sessions:
                return
            time.sleep(0.005)
        raise SystemExit("the pool did not warm")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(30)


def open_close(c, first_cell):
    # Timed to the point the session can run numpy code; the close is not.
    t = time.perf_counter()
    sid = c.call({"op": "session.open"})["session"]
    if first_cell:
        c.call({"op": "session.run", "session": sid, "code": first_cell})
    elapsed = (time.perf_counter() - t) * 1000
    c.call({"op": "session.close", "session": sid})
    return elapsed


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return r if isinstance(r, float) else (time.perf_counter() - t) * 1000


def run_quiet(argv):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {r.stderr.decode(errors='replace')}")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def throughput(make_call, seconds, workers=2):
    """Runs with `workers` clients back to back for `seconds`: how many, the
    wall time until the last ended, and each call's latency (ms)."""
    count = [0] * workers
    lat = [[] for _ in range(workers)]
    t0 = time.perf_counter()
    stop = time.time() + seconds

    def work(i):
        call = make_call()
        while time.time() < stop:
            t = time.perf_counter()
            call()
            lat[i].append((time.perf_counter() - t) * 1000)
            count[i] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count), time.perf_counter() - t0, [x for xs in lat for x in xs]


def interleaved_throughput(makers, seconds, slices):
    """Each contender's `seconds` cut into `slices` windows, taken in a new
    shuffled order each round: a drift of the machine's speed during the run
    (bare python3's rate moves by a fifth between runs here) reaches every
    contender alike, and the ratios are of the same minutes. Runs/s over all
    of a contender's windows, and its latencies."""
    runs = {k: 0 for k in makers}
    wall = {k: 0.0 for k in makers}
    lat = {k: [] for k in makers}
    for _ in range(slices):
        order = list(makers)
        random.shuffle(order)
        for k in order:
            n, w, l = throughput(makers[k], seconds / slices)
            runs[k] += n
            wall[k] += w
            lat[k] += l
    return {k: (runs[k] / wall[k], lat[k]) for k in makers}


def main():
    global POOL
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--stockade", default=os.path.join(os.path.dirname(__file__), "..", "build", "stockade"))
    ap.add_argument("--pool", type=int, default=POOL, help="warm jails per server (default 2)")
    ap.add_argument("--slices", type=int, default=5,
                    help="windows each throughput contender's seconds are cut into, interleaved (default 5)")
    ap.add_argument("--json")
    a = ap.parse_args()
    POOL = a.pool
    stockade = os.path.abspath(a.stockade)
    tmp = tempfile.mkdtemp(prefix="stockade-bench-")
    os.chmod(tmp, 0o700)
    plain = Server(stockade, tmp, "plain")
    numpy = Server(stockade, tmp, "numpy", "--preload", "numpy")
    # The same servers, each jail a python of its own: what templates change.
    plain_nt = Server(stockade, tmp, "plain-nt", "--no-templates")
    numpy_nt = Server(stockade, tmp, "numpy-nt", "--preload", "numpy", "--no-templates")
    sid = plain.c.call({"op": "session.open"})["session"]
    plain.c.call({"op": "session.run", "session": sid, "code": "x = 0"})
    try:
        contenders = {
            "bare python3 -c print(1)": lambda: run_quiet([PY, "-c", "print(1)"]),
            "stockade run -c print(1) (cold)": lambda: run_quiet([stockade, "run", "-q", "-c", "print(1)"]),
            "serve: print(1)": lambda: plain.c.call({"op": "run", "code": "print(1)"}),
            "bare python3: import numpy": lambda: run_quiet([PY, "-c", NUMPY]),
            "serve: import numpy (preloaded)": lambda: numpy.c.call({"op": "run", "code": NUMPY}),
            "serve: session cell x += 1": lambda: plain.c.call({"op": "session.run", "session": sid, "code": "x += 1"}),
            "serve: session open, numpy preloaded": lambda: open_close(numpy.c, None),
            "serve: session open + import numpy (cold)": lambda: open_close(plain.c, "import numpy"),
        }
        samples = {k: [] for k in contenders}
        for _ in range(a.rounds):
            order = list(contenders)
            random.shuffle(order)
            for k in order:
                plain.warm()
                numpy.warm(sessions=1)
                samples[k].append(timed(contenders[k]))
        # Memory, with both pools warm and nothing running.
        plain.warm()
        numpy.warm()
        mem = {}
        for name, srv in (("plain", plain), ("numpy", numpy)):
            # The server's own figures (stats "memory": PSS of each jail's processes).
            per = srv.c.call({"op": "stats", "memory": True})["memory"]["warm_pss_bytes"]
            m = srv.c.call({"op": "stats", "memory": True})["memory"]
            mem[name] = {"warm_jail_pss_kb": statistics.median(per) / 1024 if per else 0,
                         "template_pss_kb": max(m.get("template_pss_bytes") or [0]) / 1024,
                         "server_rss_kb": rss_kb(srv.p.pid)}
        plain.c.call({"op": "session.close", "session": sid})

        def serve_client(srv, code):
            def make():
                c = Conn(srv.path)
                return lambda: c.call({"op": "run", "code": code})
            return make

        tput = {}
        for code, srv, nt in ((NUMPY, numpy, numpy_nt), ("print(1)", plain, plain_nt)):
            tput[code] = interleaved_throughput({
                "bare python3": lambda: (lambda: run_quiet([PY, "-c", code])),
                "stockade run (cold)": lambda: (lambda: run_quiet([stockade, "run", "-q", "-c", code])),
                "serve" + (" (numpy preloaded)" if srv is numpy else ""): serve_client(srv, code),
                "serve --no-templates": serve_client(nt, code),
            }, a.seconds, a.slices)
        health = {name: {k: srv.c.call({"op": "stats"})[k] for k in
                         ("served", "template_forks", "template_failures", "template_error", "failures", "last_failure")}
                  for name, srv in (("plain", plain), ("numpy", numpy))}
    finally:
        for srv in (plain, numpy, plain_nt, numpy_nt):
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"latency over {a.rounds} interleaved rounds (ms, client side; warm pool):")
    print(f"  {'':36} {'p50':>8} {'p90':>8}")
    for k, xs in samples.items():
        print(f"  {k:36} {statistics.median(xs):8.2f} {pct(xs, 0.9):8.2f}")
    bare_p = statistics.median(samples["bare python3 -c print(1)"])
    bare_n = statistics.median(samples["bare python3: import numpy"])
    print(f"  serve print(1) vs bare python3: {bare_p / statistics.median(samples['serve: print(1)']):.1f}x faster")
    print(f"  serve numpy vs bare python3:    {bare_n / statistics.median(samples['serve: import numpy (preloaded)']):.1f}x faster")
    for code, rows in tput.items():
        print(f"throughput, 2 clients back to back, {a.seconds:.0f} s each in {a.slices} interleaved windows, `{code}` "
              f"(runs/s, ratio to bare python3; latency under that load, ms):")
        print(f"  {'':36} {'runs/s':>8} {'ratio':>8} {'p50':>8} {'p99':>8}")
        base = rows["bare python3"][0]
        for k, (rate, lat) in rows.items():
            print(f"  {k:36} {rate:8.1f} {rate / base:8.2f} {statistics.median(lat):8.2f} {pct(lat, 0.99):8.2f}")
    for name, h in health.items():
        print(f"  {name} server: {h}")
    print("memory:")
    for k, m in mem.items():
        print(f"  {k:6} pool: each warm jail {m['warm_jail_pss_kb'] / 1024:.1f} MiB PSS, its template "
              f"{m['template_pss_kb'] / 1024:.1f} MiB; server RSS {m['server_rss_kb'] / 1024:.1f} MiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"latency_ms": {k: {"p50": statistics.median(v), "p90": pct(v, 0.9)} for k, v in samples.items()},
                       "throughput": {code: {k: {"per_s": r, "p50_ms": statistics.median(l), "p99_ms": pct(l, 0.99)}
                                             for k, (r, l) in rows.items()} for code, rows in tput.items()},
                       "memory": mem}, f, indent=2)


if __name__ == "__main__":
    main()
