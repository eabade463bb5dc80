#!/usr/bin/env python3
"""Network modes: startup in each (namespace creation, lo up, the proxy
listener), and the proxy's cost on a 10 MB download from a loopback HTTP
server, against direct access without the jail. Loopback only.

usage: bench/network.py [--rounds N] [--stockade PATH]
"""
import argparse
import http.server
import os
import random
import socketserver
import statistics
import subprocess
import tempfile
import threading
import time

SIZE = 10 << 20
PAYLOAD = os.urandom(1 << 20) * 10


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


FETCH = ("import time, urllib.request, sys\n"
         "best = []\n"
         "for _ in range(5):\n"
         "    t = time.perf_counter(); n = len(urllib.request.urlopen(sys.argv[1]).read())\n"
         "    best.append(time.perf_counter() - t)\n"
         "assert n == %d\n"
         "print(min(best) * 1000)\n" % SIZE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--stockade", default=os.path.join(os.path.dirname(__file__), "..", "build", "stockade"))
    a = ap.parse_args()
    s = os.path.abspath(a.stockade)
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write('schema = 1\nextends = "python"\n[network]\nmode = "proxy"\n'
                f'allow = ["files.example.test:{port}", "127.0.0.1:{port}"]\n'
                'hosts = { "files.example.test" = "127.0.0.1" }\n')
        prof = f.name
    os.chmod(prof, 0o644)
    try:
        modes = {"none": [s, "run", "--set", "network.mode=none", "-c", "pass"],
                 "loopback": [s, "run", "-c", "pass"],
                 "proxy": [s, "run", "-p", prof, "-c", "pass"]}
        t = {k: [] for k in modes}
        for _ in range(a.rounds):
            for k in random.sample(list(modes), len(modes)):
                t0 = time.perf_counter()
                subprocess.run(modes[k], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                t[k].append((time.perf_counter() - t0) * 1000)
        base = statistics.median(t["none"])
        for k in modes:
            d = statistics.median([x - y for x, y in zip(t[k], t["none"])])
            print(f"startup, network {k:8}: {statistics.median(t[k]):.2f} ms ({d:+.2f} ms vs none)")
        direct = float(subprocess.run(["/usr/bin/python3", "-c", FETCH, f"http://127.0.0.1:{port}/"],
                                      capture_output=True, text=True, check=True).stdout)
        proxied = float(subprocess.run([s, "run", "-q", "-p", prof, "--timeout", "2m", "-c", FETCH,
                                        f"http://files.example.test:{port}/"],
                                       capture_output=True, text=True, check=True).stdout)
        mb = SIZE / (1 << 20)
        print(f"10 MB download: direct {direct:.1f} ms ({mb / direct * 1000:.0f} MB/s), through the proxy "
              f"{proxied:.1f} ms ({mb / proxied * 1000:.0f} MB/s), ratio {proxied / direct:.2f}")
    finally:
        os.unlink(prof)
        srv.shutdown()


if __name__ == "__main__":
    main()
