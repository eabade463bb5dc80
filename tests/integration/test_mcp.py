"""stockade mcp at the protocol level (the official SDK drives it in
tests/mcp): version negotiation, ping, batches, errors, stdout holding only
protocol messages, the operator's network modes, and the end on stdin's close."""
import json
import os
import signal
import subprocess
import time

from harness import JailTest, main


def serve_children(pid):
    """(pid, socket path) of each private `stockade serve` of an mcp process."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == pid and b"serve" in argv and b"--socket" in argv:
            out.append((int(d), argv[argv.index(b"--socket") + 1].decode()))
    return out


class McpTest(JailTest):
    def start(self, *args):
        p = subprocess.Popen(self.prefix() + [self.bin, "mcp", "--pool", "1", *args], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(), cwd=self.ws)
        self.procs.append(p)
        return p

    def send(self, p, msg):
        p.stdin.write((msg if isinstance(msg, str) else json.dumps(msg)) + "\n")
        p.stdin.flush()

    def recv(self, p):
        line = p.stdout.readline()
        self.assertTrue(line, "stockade mcp closed stdout")
        return json.loads(line)  # every stdout line is a protocol message

    def init(self, p, version):
        self.send(p, {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                      "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        return self.recv(p)["result"]

    def test_negotiation_ping_batches_and_errors(self):
        for asked, got in (("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"), ("2025-03-26", "2025-03-26"),
                           ("2024-11-05", "2025-11-25")):
            p = self.start()
            r = self.init(p, asked)
            self.assertEqual(r["protocolVersion"], got)
            self.assertIn("tools", r["capabilities"])
            p.stdin.close()
            self.assertEqual(p.wait(30), 0)  # stdin closed: the server ends
        p = self.start()
        self.init(p, "2025-11-25")
        self.send(p, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.send(p, {"jsonrpc": "2.0", "id": "p", "method": "ping"})
        self.assertEqual(self.recv(p), {"jsonrpc": "2.0", "id": "p", "result": {}})
        self.send(p, "{not json")
        self.assertEqual(self.recv(p)["error"]["code"], -32700)
        self.send(p, {"jsonrpc": "2.0", "id": 5, "method": "no/such"})
        self.assertEqual(self.recv(p)["error"]["code"], -32601)
        self.send(p, {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "nope"}})
        self.assertEqual(self.recv(p)["error"]["code"], -32602)
        self.send(p, [{"jsonrpc": "2.0", "id": 7, "method": "ping"}, {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}])
        got = {m["id"]: m for m in (self.recv(p), self.recv(p))}
        self.assertEqual(sorted(got), [7, 8])
        self.assertEqual(len(got[8]["result"]["tools"]), 4)
        # A model's bad arguments are a tool error it can read, not a protocol error.
        self.send(p, {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "run_python", "arguments": {"code": 5}}})
        r = self.recv(p)["result"]
        self.assertTrue(r["isError"])
        self.assertIn("code", r["content"][0]["text"])
        self.send(p, {"jsonrpc": "2.0", "id": 10, "method": "tools/call",
                      "params": {"name": "run_python", "arguments": {"code": "import sys; print('out'); print('err', file=sys.stderr)"}}})
        r = self.recv(p)["result"]
        self.assertFalse(r["isError"])
        self.assertEqual((r["structuredContent"]["stdout"], r["structuredContent"]["stderr"]), ("out\n", "err\n"))
        p.stdin.close()
        self.assertEqual(p.wait(30), 0)
        self.assertNotIn("Traceback", p.stderr.read())

    def test_network_modes_are_the_operators(self):
        p = self.start()
        self.init(p, "2025-11-25")
        self.send(p, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        run = [t for t in self.recv(p)["result"]["tools"] if t["name"] == "run_python"][0]
        self.assertNotIn("network", run["inputSchema"]["properties"])  # only the profile's own mode
        self.send(p, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "run_python", "arguments": {"code": "print(1)", "network": "proxy"}}})
        r = self.recv(p)["result"]
        self.assertTrue(r["isError"])
        self.assertIn("operator allows only: loopback", r["content"][0]["text"])
        p.stdin.close()
        p.wait(30)
        p = self.start("--allow-network", "none")
        self.init(p, "2025-11-25")
        self.send(p, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        run = [t for t in self.recv(p)["result"]["tools"] if t["name"] == "run_python"][0]
        self.assertEqual(run["inputSchema"]["properties"]["network"]["enum"], ["loopback", "none"])
        code = "import socket\ntry:\n    socket.socket(socket.AF_INET); print('inet')\nexcept OSError:\n    print('no inet')"
        for mode, want in (("none", "no inet\n"), ("loopback", "inet\n")):
            self.send(p, {"jsonrpc": "2.0", "id": mode, "method": "tools/call",
                          "params": {"name": "run_python", "arguments": {"code": code, "network": mode}}})
            self.assertEqual(self.recv(p)["result"]["structuredContent"]["stdout"], want)
        p.stdin.close()
        self.assertEqual(p.wait(30), 0)

    def test_ids_batches_and_hygiene(self):
        p = self.start()
        self.init(p, "2025-11-25")
        # Ids come back as the same token (a reader of doubles would send 1.2345678901234568e+28).
        big = "12345678901234567890123456789"
        self.send(p, '{"jsonrpc": "2.0", "id": ' + big + ', "method": "ping"}')
        self.assertTrue(p.stdout.readline().startswith('{"jsonrpc":"2.0","id":' + big + ","))
        self.send(p, "[]")  # an empty batch is an invalid request
        self.assertEqual(self.recv(p)["error"]["code"], -32600)
        self.send(p, '{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": ' + "[" * 50000 + "]" * 50000 + "}")
        self.assertEqual(self.recv(p)["error"]["code"], -32700)  # too deep: refused, the server lives
        # Images by their bytes: a script named .png is not an image.
        code = ("open('out/evil.png', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>')\n"
                "open('out/x.svg', 'w').write('<svg/>')")
        self.send(p, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "run_python", "arguments": {"code": code}}})
        r = self.recv(p)["result"]
        self.assertEqual([c["type"] for c in r["content"]], ["text"])
        self.assertIn("not a PNG", json.dumps(r["structuredContent"]["files"]))
        # The operator's time limit is in the schema.
        self.send(p, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        run = [t for t in self.recv(p)["result"]["tools"] if t["name"] == "run_python"][0]
        self.assertEqual(run["inputSchema"]["properties"]["timeout_s"]["maximum"], 30)
        # A run over the time limit says so.
        self.send(p, {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                      "params": {"name": "run_python", "arguments": {"code": "import time; time.sleep(9)", "timeout_s": 0.5}}})
        self.assertIn("time limit of 0.5 s", self.recv(p)["result"]["content"][0]["text"])
        p.stdin.close()
        self.assertEqual(p.wait(30), 0)

    def test_output_over_the_message_cap(self):
        p = self.start()
        self.init(p, "2025-11-25")
        code = "import sys\nsys.stdout.write('a' * (12 << 20))\nsys.stderr.write('tail')"
        self.send(p, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "run_python", "arguments": {"code": code}}})
        line = p.stdout.readline()
        # The program's output alone is over the SDK's 10 MiB message cap; the message is far below it.
        self.assertLess(len(line), 2 << 20)
        sc = json.loads(line)["result"]["structuredContent"]
        self.assertEqual(sc["stdout_bytes"], 12 << 20)
        self.assertTrue(sc["truncated"])
        self.assertEqual(sc["stderr"], "tail")
        total = 0
        for i, uri in enumerate(sc["output_resources"]):
            self.send(p, {"jsonrpc": "2.0", "id": 100 + i, "method": "resources/read", "params": {"uri": uri}})
            msg = p.stdout.readline()
            self.assertLess(len(msg), 2 << 20)
            total += len(json.loads(msg)["result"]["contents"][0]["text"])
        self.assertEqual(total, 12 << 20)
        p.stdin.close()
        self.assertEqual(p.wait(30), 0)

    def test_end_of_input_finishes_the_calls_in_flight(self):
        p = self.start()
        self.init(p, "2025-11-25")
        self.send(p, {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "run_python", "arguments": {"code": "import time; time.sleep(0.5); print('late')"}}})
        p.stdin.close()  # `stockade mcp < requests.jsonl`: the input ends with the call in flight
        self.assertEqual(self.recv(p)["result"]["structuredContent"]["stdout"], "late\n")
        self.assertEqual(p.wait(30), 0)

    def test_sigterm_leaves_nothing(self):
        p = self.start()
        self.init(p, "2025-11-25")
        kids = serve_children(p.pid)
        self.assertEqual(len(kids), 1)
        spid, sock = kids[0]
        self.assertTrue(os.path.exists(sock))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0)
        self.assertFalse(os.path.exists(os.path.dirname(sock)))  # the private directory is gone
        self.assertFalse(os.path.exists(f"/proc/{spid}"))

    def test_a_profile_that_cannot_run_refuses_at_start(self):
        if not self.drop:
            self.skipTest("as root this host gives strict its cgroup; the refusal shows unprivileged")
        p = subprocess.run(self.prefix() + [self.bin, "mcp", "-p", "strict"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, env=self.env(), cwd=self.ws, timeout=60)
        self.assertEqual(p.returncode, 125)
        self.assertEqual(p.stdout, "")
        self.assertIn("require_cgroup", p.stderr)
        self.assertIn("systemd-run --user --scope", p.stderr)  # the fix


if __name__ == "__main__":
    main()
