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
(`import numpy; print(1)`) through serve, `stockade run` cold, and bare
python3, as ratios to bare python3.
Memory: what each warm jail holds (PSS of its processes), and the server's RSS.

usage: bench/serve.py [--rounds N] [--seconds S] [--stockade PATH] [--json FILE]
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
        self.p = subprocess.Popen([stockade, "serve", "--socket", self.path, "--pool", "2", *args],
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

    def warm(self, n=2, sessions=0):
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


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


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
    count = [0] * workers
    stop = time.time() + seconds

    def work(i):
        call = make_call()
        while time.time() < stop:
            call()
            count[i] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count) / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--stockade", default=os.path.join(os.path.dirname(__file__), "..", "build", "stockade"))
    ap.add_argument("--json")
    a = ap.parse_args()
    stockade = os.path.abspath(a.stockade)
    tmp = tempfile.mkdtemp(prefix="stockade-bench-")
    os.chmod(tmp, 0o700)
    plain = Server(stockade, tmp, "plain")
    numpy = Server(stockade, tmp, "numpy", "--preload", "numpy")
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
            inits = []
            with open(f"/proc/{srv.p.pid}/task/{srv.p.pid}/children") as f:
                inits = [int(x) for x in f.read().split()]
            per = [sum(pss_kb(p) for p in [i] + descendants(i)) for i in inits]
            mem[name] = {"warm_jail_pss_kb": statistics.median(per) if per else 0, "server_rss_kb": rss_kb(srv.p.pid)}
        plain.c.call({"op": "session.close", "session": sid})

        def serve_client():
            c = Conn(numpy.path)
            return lambda: c.call({"op": "run", "code": NUMPY})

        tput = {
            "bare python3": throughput(lambda: (lambda: run_quiet([PY, "-c", NUMPY])), a.seconds),
            "stockade run (cold)": throughput(lambda: (lambda: run_quiet([stockade, "run", "-q", "-c", NUMPY])), a.seconds),
            "serve (numpy preloaded)": throughput(serve_client, a.seconds),
        }
    finally:
        plain.stop()
        numpy.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"latency over {a.rounds} interleaved rounds (ms, client side; warm pool):")
    print(f"  {'':36} {'p50':>8} {'p90':>8}")
    for k, xs in samples.items():
        print(f"  {k:36} {statistics.median(xs):8.2f} {pct(xs, 0.9):8.2f}")
    bare_p = statistics.median(samples["bare python3 -c print(1)"])
    bare_n = statistics.median(samples["bare python3: import numpy"])
    print(f"  serve print(1) vs bare python3: {bare_p / statistics.median(samples['serve: print(1)']):.1f}x faster")
    print(f"  serve numpy vs bare python3:    {bare_n / statistics.median(samples['serve: import numpy (preloaded)']):.1f}x faster")
    print(f"throughput, 2 clients, {a.seconds:.0f} s each, `{NUMPY}` (runs/s, ratio to bare python3):")
    for k, v in tput.items():
        print(f"  {k:36} {v:8.1f} {v / tput['bare python3']:8.2f}")
    print("memory:")
    for k, m in mem.items():
        print(f"  {k:6} pool: each warm jail {m['warm_jail_pss_kb'] / 1024:.1f} MiB PSS; server RSS {m['server_rss_kb'] / 1024:.1f} MiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"latency_ms": {k: {"p50": statistics.median(v), "p90": pct(v, 0.9)} for k, v in samples.items()},
                       "throughput_per_s": tput, "memory": mem}, f, indent=2)


if __name__ == "__main__":
    main()
