"""The allowlist proxy under attack from the jail. A DNS server of the test's
own on 127.0.0.1 (network.nameservers) sees every lookup the proxy makes, so a
test can tell a refusal before resolution from one after. Nothing here sends
traffic beyond this machine's loopback."""
import ctypes
import http.server
import json
import os
import socket
import struct
import threading
import time

from harness import SANITIZED, JailTest, main
from test_network import Server


class DNS(threading.Thread):
    """Answers A queries with 127.0.0.1 (or never, when silent) and records every name asked."""

    def __init__(self, silent=False):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.silent = silent
        self.asked = []
        self.start()

    def run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            qid, flags, qd = struct.unpack(">HHH", data[:6])
            pos, labels = 12, []
            while data[pos]:
                labels.append(data[pos + 1:pos + 1 + data[pos]].decode(errors="replace"))
                pos += 1 + data[pos]
            qtype = struct.unpack(">H", data[pos + 1:pos + 3])[0]
            question = data[12:pos + 5]
            self.asked.append(".".join(labels))
            if self.silent:
                continue
            if qtype == 1:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
                self.sock.sendto(struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer, peer)
            else:
                self.sock.sendto(struct.pack(">HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question, peer)

    def close(self):
        self.sock.close()


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"host={self.headers.get('Host')} all={self.headers.get_all('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class KeepAlive(http.server.BaseHTTPRequestHandler):
    """A server that keeps the connection for the next request whatever the
    client said: a second request on it is answered too."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"host={self.headers.get('Host')} path={self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = False

    do_POST = do_GET

    def log_message(self, *a):
        pass


RAW = ("import socket, sys\n"
       "s = socket.create_connection(('127.0.0.1', 3128), timeout=20)\n"
       "s.sendall(bytes.fromhex(sys.argv[1]))\n"
       "data = b''\n"
       "while True:\n"
       "    chunk = s.recv(4096)\n"
       "    if not chunk:\n"
       "        break\n"
       "    data += chunk\n"
       "print(data.decode(errors='replace'))\n")


class ProxyAttackTest(JailTest):
    @classmethod
    def setUpClass(cls):
        cls.http = Server(("127.0.0.1", 0), Echo)
        threading.Thread(target=cls.http.serve_forever, daemon=True).start()
        cls.hport = cls.http.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.http.shutdown()

    def setUp(self):
        super().setUp()
        self.dns = DNS()

    def tearDown(self):
        self.dns.close()
        super().tearDown()

    def proxy_opts(self, allow, hosts=None, dns=None):
        opts = ["--set", "network.mode=proxy", "--set", "network.allow=" + json.dumps(allow),
                "--set", f'network.nameservers=["127.0.0.1:{(dns or self.dns).port}"]']
        if hosts:
            opts += ["--set", "network.hosts={" + ", ".join(f'"{k}" = "{v}"' for k, v in hosts.items()) + "}"]
        return opts

    def raw(self, request, opts, **kw):
        result = self.path(f"res-{time.time_ns()}.json")
        if self.drop:
            os.chmod(self.ws, 0o777)
        r = self.jail_py(RAW, request.hex(), opts=(*opts, "--result", result), **kw)
        with open(result) as f:
            return r, json.load(f)

    def test_nul_byte_cannot_split_the_name(self):
        # Unprotected: a suffix check on the whole string passes, and the C
        # resolver sees only what comes before the NUL.
        evil = b"localhost\x00.example.com"
        self.assertTrue(evil.decode().endswith(".example.com"))
        libc = ctypes.CDLL(None)
        res = ctypes.c_void_p()
        self.assertEqual(libc.getaddrinfo(ctypes.c_char_p(evil), None, None, ctypes.byref(res)), 0)
        libc.freeaddrinfo(res)
        # stockade: refused as malformed, before any lookup.
        r, doc = self.raw(b"CONNECT exfil.attacker.test\x00.example.com:443 HTTP/1.1\r\n\r\n",
                          self.proxy_opts(["*.example.com:443"]))
        self.assertOk(r)
        self.assertIn("400", r.stdout)
        self.assertEqual(self.dns.asked, [])
        self.assertFalse(any(n["allowed"] for n in doc["network"]))
        for bad in (b"CONNECT exfil .example.com:443", b"CONNECT exfil\t.example.com:443",
                    b"CONNECT exfil%00.example.com:443", b"CONNECT a\xff.example.com:443",
                    b"CONNECT a_b.example.com:443", b"CONNECT " + b"a" * 64 + b".example.com:443"):
            with self.subTest(bad=bad):
                r, doc = self.raw(bad + b" HTTP/1.1\r\n\r\n", self.proxy_opts(["*.example.com:443"]))
                self.assertIn("400", r.stdout)
        self.assertEqual(self.dns.asked, [])

    def test_trailing_dot_and_case_use_the_pin(self):
        allow = [f"api.example.test:{self.hport}", f"127.0.0.1:{self.hport}"]
        for host in ("api.example.test.", "API.Example.TEST", "Api.example.test."):
            with self.subTest(host=host):
                req = f"GET http://{host}:{self.hport}/x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
                r, doc = self.raw(req, self.proxy_opts(allow, {"api.example.test": "127.0.0.1"}))
                self.assertIn("200", r.stdout)
                self.assertEqual(doc["network"][0]["host"], "api.example.test")
        self.assertEqual(self.dns.asked, [], "a pinned name went to DNS")

    def test_host_header_is_the_targets(self):
        allow = [f"api.example.test:{self.hport}", f"127.0.0.1:{self.hport}"]
        # Unprotected: the server believes whatever Host the client sends.
        with socket.create_connection(("127.0.0.1", self.hport)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: internal.admin\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := s.recv(4096):
                got += chunk
            self.assertIn(b"host=internal.admin", got)
        req = (f"GET http://api.example.test:{self.hport}/ HTTP/1.1\r\nHost: internal.admin\r\n"
               f"host: second.admin\r\n\r\n").encode()
        r, _ = self.raw(req, self.proxy_opts(allow, {"api.example.test": "127.0.0.1"}))
        self.assertIn(f"host=api.example.test:{self.hport} all=['api.example.test:{self.hport}']", r.stdout)
        # Header smuggling with a bare LF is refused outright.
        req = (f"GET http://api.example.test:{self.hport}/ HTTP/1.1\r\nX: a\nHost: internal.admin\r\n\r\n").encode()
        r, _ = self.raw(req, self.proxy_opts(allow, {"api.example.test": "127.0.0.1"}))
        self.assertIn("400", r.stdout)

    def test_a_second_request_on_one_connection_is_never_passed(self):
        ka = Server(("127.0.0.1", 0), KeepAlive)
        threading.Thread(target=ka.serve_forever, daemon=True).start()
        port = ka.server_address[1]
        try:
            second = b"GET /second HTTP/1.1\r\nHost: internal.admin\r\n\r\n"
            # Unprotected: the server answers both pipelined requests, the
            # second for whatever Host it names.
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"GET /first HTTP/1.1\r\nHost: api.example.test\r\n\r\n" + second)
                s.settimeout(2)
                got = b""
                try:
                    while b"path=/second" not in got and (chunk := s.recv(4096)):
                        got += chunk
                except socket.timeout:
                    pass
                self.assertIn(b"host=internal.admin path=/second", got)
            allow = [f"api.example.test:{port}", f"127.0.0.1:{port}"]
            pins = {"api.example.test": "127.0.0.1"}
            # Through the proxy: the first is checked and rewritten; the second never reaches the server.
            first = f"GET http://api.example.test:{port}/first HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            for tail in (second, f"GET http://api.example.test:{port}/second HTTP/1.1\r\n\r\n".encode()):
                r, _ = self.raw(first + tail, self.proxy_opts(allow, pins))
                self.assertIn("path=/first", r.stdout)
                self.assertNotIn("/second", r.stdout)
                self.assertNotIn("internal.admin", r.stdout)
            # A body is passed by its Content-Length, and what follows it is not.
            post = (f"POST http://api.example.test:{port}/p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody").encode()
            r, _ = self.raw(post + second, self.proxy_opts(allow, pins))
            self.assertIn("path=/p", r.stdout)
            self.assertNotIn("internal.admin", r.stdout)
            # A body whose end is not known in advance is refused.
            chunked = (f"POST http://api.example.test:{port}/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\n").encode()
            r, _ = self.raw(chunked + second, self.proxy_opts(allow, pins))
            self.assertIn("411", r.stdout)
        finally:
            ka.shutdown()

    def test_resolved_name_is_checked_after_resolution(self):
        # The DNS answer is 127.0.0.1: internal, so refused unless listed by address.
        r, doc = self.raw(b"CONNECT svc.example.test:443 HTTP/1.1\r\n\r\n", self.proxy_opts(["svc.example.test:443"]))
        self.assertIn("403", r.stdout)
        self.assertIn("svc.example.test", self.dns.asked)
        self.assertIn("internal address", doc["network"][0]["reason"])

    def test_silent_dns_does_not_hold_up_the_run(self):
        silent = DNS(silent=True)
        try:
            # Unprotected: the server never answers.
            q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            q.settimeout(2)
            q.sendto(struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x04slow\x04test\x00\x00\x01\x00\x01",
                     ("127.0.0.1", silent.port))
            with self.assertRaises(socket.timeout):
                q.recv(512)
            q.close()
            # In the jail: one lookup hangs; another connection goes through at
            # once; the wall clock ends the run on time.
            code = ("import socket, threading, time, urllib.request, sys\n"
                    "def slow():\n"
                    "    s = socket.create_connection(('127.0.0.1', 3128)); s.sendall(b'CONNECT a.slow.test:443 HTTP/1.1\\r\\n\\r\\n')\n"
                    "    s.recv(100)\n"
                    "threading.Thread(target=slow, daemon=True).start()\n"
                    "time.sleep(0.3)\n"
                    "t = time.time()\n"
                    "urllib.request.urlopen('http://api.example.test:%d/fast', timeout=10).read()\n"
                    "print('fast took', round(time.time() - t, 2), flush=True)\n"
                    "time.sleep(30)\n" % self.hport)
            allow = ["*.slow.test:443", f"api.example.test:{self.hport}", f"127.0.0.1:{self.hport}"]
            t0 = time.monotonic()
            r = self.stockade("run", *self.proxy_opts(allow, {"api.example.test": "127.0.0.1"}, dns=silent),
                              "--timeout", "2s", "--set", "limits.grace=500ms", "-c", code, timeout=60)
            elapsed = time.monotonic() - t0
            self.assertEqual(r.returncode, 124, r.stderr)
            self.assertLess(elapsed, 5, "the silent DNS server held the run past its wall clock")
            fast = float(r.stdout.split("fast took ")[1].split()[0])
            self.assertLess(fast, 1.0)
            self.assertIn("a.slow.test", silent.asked)
        finally:
            silent.close()

    def test_records_are_bounded(self):
        code = ("import socket\n"
                "def ask(req):\n"
                "    s = socket.create_connection(('127.0.0.1', 3128))\n"
                "    s.sendall(req); s.recv(200); s.close()\n"
                "for i in range(1500):\n"
                "    ask(b'CONNECT ' + b'x' * 15000 + b'.%d:443 HTTP/1.1\\r\\n\\r\\n' % i)\n"
                "    ask(b'CONNECT host%d.not-listed.test:443 HTTP/1.1\\r\\n\\r\\n' % i)\n"
                "    ask(b'CONNECT same.not-listed.test:443 HTTP/1.1\\r\\n\\r\\n')\n"
                "print('done')\n")
        result = self.path("res.json")
        r = self.stockade("run", *self.proxy_opts(["*.example.com:443"]), "--result", result, "-c", code,
                          timeout=240)
        self.assertOk(r)
        size = os.path.getsize(result)
        with open(result) as f:
            doc = json.load(f)
        self.assertLess(size, 1 << 20, f"result is {size} bytes")
        self.assertLessEqual(len(doc["network"]), 1000)
        total = sum(n["count"] for n in doc["network"]) + doc["network_dropped"]
        self.assertEqual(total, 4500)
        same = [n for n in doc["network"] if n["host"] == "same.not-listed.test"]
        self.assertEqual(len(same), 1)
        self.assertEqual(same[0]["count"], 1500)
        self.assertTrue(all(len(n["host"]) <= 260 for n in doc["network"]))
        if not SANITIZED:
            self.assertLess(doc["supervisor"]["max_rss_bytes"], 16 << 20)


if __name__ == "__main__":
    main()
