"""Network modes. Test servers listen only on the host's 127.0.0.1; nothing here
sends traffic anywhere else (refused destinations are refused before any
connection is made). Each server is first shown reachable without the jail."""
import http.server
import json
import os
import socket
import socketserver
import ssl
import subprocess
import threading
import time

from harness import JailTest, main


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return server


class NetworkTest(JailTest):
    @classmethod
    def setUpClass(cls):
        cls.http = serve(Server(("127.0.0.1", 0), Handler))
        cls.https = Server(("127.0.0.1", 0), Handler)
        cls.certdir = os.path.join("/tmp", f"stockade-certs-{os.getpid()}")
        os.makedirs(cls.certdir, exist_ok=True)
        os.chmod(cls.certdir, 0o755)
        cls.cert = os.path.join(cls.certdir, "cert.pem")
        key = os.path.join(cls.certdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=api.example.test", "-addext", "subjectAltName=DNS:api.example.test",
                        "-keyout", key, "-out", cls.cert], check=True, capture_output=True)
        os.chmod(cls.cert, 0o644)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cls.cert, key)
        cls.https.socket = ctx.wrap_socket(cls.https.socket, server_side=True)
        serve(cls.https)
        cls.hport = cls.http.server_address[1]
        cls.sport = cls.https.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.http.shutdown()
        cls.https.shutdown()
        subprocess.run(["rm", "-rf", cls.certdir])

    def profile(self, allow, hosts):
        text = ('schema = 1\nextends = "python"\n[network]\nmode = "proxy"\nallow = ' + json.dumps(allow) +
                "\nhosts = { " + ", ".join(f'"{k}" = "{v}"' for k, v in hosts.items()) + " }\n")
        return self.write(f"net-{time.time_ns()}.toml", text)

    FETCH = ("import ssl, sys, urllib.request\n"
             "ctx = ssl.create_default_context(cafile='/certs/cert.pem')\n"
             "for url in sys.argv[1:]:\n"
             "    try:\n"
             "        print('ok', urllib.request.urlopen(url, timeout=10, context=ctx).read().decode())\n"
             "    except Exception as e:\n"
             "        print('refused', getattr(e, 'code', ''), (e.read().decode().strip() if hasattr(e, 'read') else e))\n")

    def test_servers_reachable_without_the_jail(self):
        code = self.FETCH.replace("/certs/cert.pem", self.cert)
        r = self.host_py(code.replace("urllib.request.urlopen(url", "urllib.request.urlopen(url.replace('api.example.test', '127.0.0.1') if 'http:' in url else url"),
                         f"http://api.example.test:{self.hport}/x")
        self.assertIn("ok hello /x", r.stdout)

    def test_services_everywhere_and_ca_certificates_where_the_network_reaches_out(self):
        code = ("import socket, ssl\n"
                "print(socket.getservbyname('https'), ssl.create_default_context().cert_store_stats()['x509_ca'] > 0)")
        host = self.host_py(code)
        self.assertIn("443", host.stdout)
        has_ca = host.stdout.split()[1]
        r = self.stockade("run", "-c", code)  # loopback: nothing to verify out there
        self.assertEqual(r.stdout, "443 False\n", r.stderr)
        r = self.stockade("run", "--set", "network.mode=proxy", "-c", code)
        self.assertEqual(r.stdout, f"443 {has_ca}\n", r.stderr)

    def test_tls_verifies_with_the_default_trust_store(self):
        # A trust store that holds only the test CA, bound where the system's goes:
        # python's default context (no cafile) then verifies the loopback server.
        store = self.mkdir("store")
        with open(self.cert) as f, open(os.path.join(store, "ca-certificates.crt"), "w") as out:
            out.write(f.read())
        os.chmod(os.path.join(store, "ca-certificates.crt"), 0o644)
        code = self.FETCH.replace("ssl.create_default_context(cafile='/certs/cert.pem')", "ssl.create_default_context()")
        allow = [f"api.example.test:{self.sport}", f"127.0.0.1:{self.sport}"]
        url = f"https://api.example.test:{self.sport}/tls"
        prof = self.profile(allow, {"api.example.test": "127.0.0.1"})
        r = self.stockade("run", "-p", prof, "-c", code, url, timeout=120)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", r.stdout)  # the system's CAs do not know the test CA
        r = self.stockade("run", "-p", prof, "--ro", f"{store}:/etc/ssl/certs", "-c", code, url, timeout=120)
        self.assertIn("ok hello /tls", r.stdout, r.stderr)

    def test_none_mode(self):
        probe = ("import socket\n"
                 "print(open('/proc/self/net/dev').read().count('lo:'))\n"
                 "for what, f in (('bind', lambda s: s.bind(('127.0.0.1', 0))), ('connect', lambda s: s.connect(('127.0.0.1', %d)))):\n"
                 "    try:\n        f(socket.socket()); print(what, 'worked')\n"
                 "    except OSError as e:\n        print(what, 'failed', e.errno)\n") % self.hport
        r = self.stockade("run", "--set", "network.mode=none", "-c", probe)
        self.assertOk(r)
        self.assertNotIn("worked", r.stdout)
        self.assertIn("bind failed 97", r.stdout)  # EAFNOSUPPORT: "none" allows AF_UNIX sockets only
        self.assertIn("refused", r.stderr)

    def test_proxy_http_and_https(self):
        allow = [f"api.example.test:{self.hport}", f"api.example.test:{self.sport}", f"127.0.0.1:{self.hport}",
                 f"127.0.0.1:{self.sport}"]
        script = self.write(f"fetch-{time.time_ns()}.py", self.FETCH)
        out = self.path("res.json")
        if self.drop:
            os.chmod(self.ws, 0o777)
        r = self.stockade("run", "-p", self.profile(allow, {"api.example.test": "127.0.0.1"}), "--ro",
                          f"{self.cert}:/certs/cert.pem", "--result", out, script,
                          f"http://api.example.test:{self.hport}/plain", f"https://api.example.test:{self.sport}/tls",
                          timeout=120)
        self.assertOk(r)
        self.assertIn("ok hello /plain", r.stdout)
        self.assertIn("ok hello /tls", r.stdout)
        with open(out) as f:
            net = json.load(f)["network"]
        self.assertEqual([(n["method"], n["host"], n["allowed"]) for n in net],
                         [("GET", "api.example.test", True), ("CONNECT", "api.example.test", True)])
        self.assertGreater(net[1]["bytes_down"], 100)  # the TLS handshake went through, encrypted

    def refused(self, allow, hosts, url):
        script = self.write(f"fetch-{time.time_ns()}.py", self.FETCH)
        out = self.path(f"res-{time.time_ns()}.json")
        if self.drop:
            os.chmod(self.ws, 0o777)
        r = self.stockade("run", "-p", self.profile(allow, hosts), "--ro", f"{self.cert}:/certs/cert.pem",
                          "--result", out, script, url, timeout=120)
        with open(out) as f:
            return r, json.load(f)["network"]

    def test_name_not_on_the_list(self):
        r, net = self.refused([f"api.example.test:{self.hport}"], {"other.example.test": "127.0.0.1"},
                              f"http://other.example.test:{self.hport}/")
        self.assertIn("refused 403 stockade proxy: other.example.test", r.stdout)
        self.assertIn("not on the allow list", r.stdout)
        self.assertFalse(net[0]["allowed"])

    def test_listed_name_pinned_inside_is_refused(self):
        r, net = self.refused([f"api.example.test:{self.hport}"], {"api.example.test": "127.0.0.1"},
                              f"http://api.example.test:{self.hport}/")
        self.assertIn("resolves to 127.0.0.1, an internal address", r.stdout)
        self.assertFalse(net[0]["allowed"])

    def test_ip_literal_is_refused(self):
        # 127.0.0.2: through the proxy (NO_PROXY covers only 127.0.0.1), and loopback
        # even if the refusal failed, so no traffic could leave this machine.
        r, net = self.refused([f"api.example.test:{self.hport}"], {"api.example.test": "127.0.0.1"},
                              f"http://127.0.0.2:{self.hport}/")
        self.assertIn("refused 403", r.stdout)
        self.assertEqual("127.0.0.2", net[0]["host"])
        self.assertFalse(net[0]["allowed"])

    def test_direct_connect_bypassing_the_proxy_fails(self):
        probe = ("import socket, sys\n"
                 "try:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3); print('connected')\n"
                 "except OSError as e:\n    print('failed', type(e).__name__)\n")
        self.assertIn("connected", self.host_py(probe, str(self.hport)).stdout)
        allow = [f"api.example.test:{self.hport}", f"127.0.0.1:{self.hport}"]
        r = self.stockade("run", "-p", self.profile(allow, {"api.example.test": "127.0.0.1"}), "-c", probe,
                          str(self.hport))
        self.assertIn("failed ConnectionRefusedError", r.stdout)

    def test_proxy_survives_floods_and_silence(self):
        allow = [f"api.example.test:{self.hport}", f"127.0.0.1:{self.hport}"]
        code = ("import socket, urllib.request, time\n"
                "flood = []\n"
                "for _ in range(300):\n"
                "    try:\n        flood.append(socket.create_connection(('127.0.0.1', 3128), timeout=5))\n"
                "    except OSError as e:\n        break\n"
                "time.sleep(1)\n"
                "busy = 0\n"
                "for s in flood:\n"
                "    s.settimeout(0.01)\n"
                "    try:\n        busy += s.recv(100).startswith(b'HTTP/1.1 503')\n"
                "    except OSError:\n        pass\n"
                "print('flood', len(flood), 'turned away', busy)\n"
                "silent = socket.create_connection(('127.0.0.1', 3128))\n"  # never sends a request line
                "for s in flood: s.close()\n"
                "time.sleep(0.5)\n"
                "print(urllib.request.urlopen('http://api.example.test:%d/after', timeout=20).read().decode())\n"
                % self.hport)
        r = self.stockade("run", "-p", self.profile(allow, {"api.example.test": "127.0.0.1"}), "-c", code,
                          timeout=120)
        self.assertOk(r)
        self.assertIn("hello /after", r.stdout)
        turned_away = int(r.stdout.split("turned away ")[1].split()[0])
        self.assertGreater(turned_away, 100)  # bounded: at most 64 at once

    def test_host_mode_needs_unsafe(self):
        r = self.stockade("check", self.write("host.toml", 'schema = 1\n[network]\nmode = "host"\n'))
        self.assertEqual(r.returncode, 125)
        self.assertIn("[unsafe] host_network = true", r.stderr)


if __name__ == "__main__":
    main()
