"""stockade mcp at the protocol level (the official SDK drives it in
tests/mcp): version negotiation, ping, batches, errors, stdout holding only
protocol messages, the operator's network modes, and the end on stdin's close."""
import json
import subprocess
import time

from harness import JailTest, main


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


if __name__ == "__main__":
    main()
