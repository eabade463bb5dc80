"""The parts of stockade that run outside the jail, attacked from inside it:
the result writer, the --learn writer, the seccomp notification path, the
output relay, kill mode, and the init. Each attack is first shown working
against a naive host (or its effect outside), then failing against stockade."""
import json
import os
import subprocess
import time

from harness import SANITIZED, JailTest, main

# Plants a symlink where the supervisor will write the result, and keeps
# planting it until the run ends, so no timing lets the supervisor dodge it.
PLANT = """
import os, sys, time
target, link = sys.argv[1], sys.argv[2]
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    try:
        os.unlink(link)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass
    os.symlink(target, link)
    time.sleep(0.01)
print("planted", flush=True)
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HostFilesTest(JailTest):
    def naive_write(self, path, text):
        # What `--result` did before: open(O_CREAT|O_TRUNC), following links.
        with open(path, "w") as f:
            f.write(text)

    def test_result_never_follows_a_planted_symlink(self):
        out = self.mkdir("out", 0o777)
        victim = self.write("victim.txt", "precious\n")
        dangling = self.path("created-by-attack")
        for target in (victim, dangling):
            with self.subTest(target=os.path.basename(target)):
                link = os.path.join(out, "result.json")
                # Unprotected: a naive writer follows the planted link.
                os.symlink(target, link)
                self.naive_write(link, "{}")
                self.assertTrue(os.path.exists(target))
                with open(target) as f:
                    self.assertEqual(f.read(), "{}")
                os.unlink(link)
                if target == victim:
                    self.write("victim.txt", "precious\n")
                else:
                    os.unlink(dangling)
                # stockade: the link is replaced, never followed.
                r = self.jail_py(PLANT, target, "/work/out/result.json", "1.0",
                                 opts=("--rw", f"{out}:/work/out", "--result", link))
                self.assertOk(r)
                self.assertIn("planted", r.stdout)
                self.assertFalse(os.path.islink(link), "the result is still the jail's symlink")
                with open(link) as f:
                    self.assertEqual(json.load(f)["status"], "ok")
                with open(victim) as f:
                    self.assertEqual(f.read(), "precious\n")
                self.assertFalse(os.path.exists(dangling), "the supervisor created the link's target")
                leftovers = [n for n in os.listdir(out) if n.endswith(".tmp")]
                self.assertEqual(leftovers, [])
                os.unlink(link)

    def test_learn_never_follows_a_planted_symlink(self):
        out = self.mkdir("out", 0o777)
        victim = self.write("victim.txt", "precious\n")
        link = os.path.join(out, "learned.toml")
        r = self.jail_py(PLANT, victim, "/work/out/learned.toml", "1.0",
                         opts=("--rw", f"{out}:/work/out", "--learn", link))
        self.assertOk(r)
        self.assertFalse(os.path.islink(link))
        with open(link) as f:
            self.assertIn("[seccomp]", f.read())
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_result_to_the_callers_own_fds(self):
        # /dev/stdout and /dev/fd/N are the caller's descriptors spelled as
        # paths: written through, never replaced (the jail can plant nothing there).
        before = os.readlink("/dev/stdout")
        r = self.stockade("run", "-q", "--result", "/dev/stdout", "-c", "print('out')")
        self.assertOk(r)
        self.assertEqual(os.readlink("/dev/stdout"), before)
        self.assertTrue(r.stdout.startswith("out\n{"), r.stdout)
        self.assertEqual(json.loads(r.stdout[4:])["status"], "ok")
        rfd, wfd = os.pipe()
        try:
            r = self.stockade("run", "-q", "--result", f"/dev/fd/{wfd}", "-c", "pass", pass_fds=(wfd,))
            os.close(wfd)
            wfd = -1
            with os.fdopen(rfd, "rb") as f:
                rfd = -1
                self.assertEqual(json.loads(f.read())["status"], "ok")
        finally:
            for fd in (rfd, wfd):
                if fd >= 0:
                    os.close(fd)
        self.assertOk(r)

    def test_stale_result_never_survives(self):
        result = self.path("result.json")
        for args in (["run", "--set", "limits.memory=nonsense", "-c", "pass"],   # bad profile
                     ["run", "--ro", "/nonexistent-src", "-c", "pass"],          # jail cannot be built
                     ["run", "-c", "raise SystemExit(3)"]):
            with self.subTest(args=args):
                self.write("result.json", '{"status": "ok", "stale": true}')
                r = self.stockade(args[0], "--result", result, *args[1:])
                with open(result) as f:
                    doc = json.load(f)
                self.assertNotIn("stale", doc, r.stderr)
                self.assertEqual(doc["status"], "exit_nonzero" if r.returncode == 3 else "setup_error")

    def test_result_is_valid_utf8_whatever_the_jail_sends(self):
        # A proxy request whose host holds invalid UTF-8 and control bytes: its
        # record must not break the result (nlohmann's dump threw on it before).
        code = ("import socket\n"
                "s = socket.create_connection(('127.0.0.1', 3128))\n"
                "s.sendall(b'CONNECT exfil\\xff\\x00.example.com:443 HTTP/1.1\\r\\n\\r\\n')\n"
                "print(s.recv(100).split(b'\\r\\n')[0].decode())\n")
        result = self.path("result.json")
        self.write("result.json", '{"stale": true}')
        r = self.stockade("run", "--set", "network.mode=proxy", "--set", 'network.allow=["*.example.com:443"]',
                          "--result", result, "-c", code)
        self.assertOk(r)
        self.assertIn("400", r.stdout)
        with open(result, "rb") as f:
            raw = f.read()
        raw.decode("utf-8")  # strict: raises on invalid UTF-8
        doc = json.loads(raw)
        self.assertEqual(doc["status"], "ok")
        self.assertTrue(all(0x20 <= b < 0x7f or b in b"\n" for b in raw), "control or non-ASCII bytes in the result")


class SupervisorBoundsTest(JailTest):
    def test_refused_syscall_flood_is_rate_bound(self):
        # Four threads calling a refused syscall as fast as they can. Without a
        # bound the supervisor answered each at once and burned a core.
        code = ("import ctypes, threading, time\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "count = [0] * 4\n"
                "def loop(i):\n"
                "    end = time.time() + 2.5\n"
                "    while time.time() < end:\n"
                "        libc.syscall(163, None)  # acct: refused\n"
                "        count[i] += 1\n"
                "ts = [threading.Thread(target=loop, args=(i,)) for i in range(4)]\n"
                "[t.start() for t in ts]; [t.join() for t in ts]\n"
                "print(sum(count))\n")
        result = self.path("result.json")
        r = self.stockade("run", "--result", result, "-c", code)
        self.assertOk(r)
        calls = int(r.stdout)
        with open(result) as f:
            doc = json.load(f)
        refused = sum(v["count"] for v in doc["violations"] if v["syscall"] == "acct")
        self.assertEqual(refused, calls, "every refusal is counted")
        sup = doc["supervisor"]["cpu_ms"]
        jail = doc["cpu_user_ms"] + doc["cpu_sys_ms"]
        if SANITIZED:
            self.skipTest("resource bounds hold for the release build; this one is instrumented")
        self.assertLess(sup, 0.15 * doc["wall_ms"], f"supervisor {sup} ms CPU in {doc['wall_ms']} ms")
        self.assertLess(sup, jail, f"supervisor {sup} ms CPU, jail {jail} ms")
        self.assertLess(doc["supervisor"]["max_rss_bytes"], 16 << 20)

    def test_full_caller_pipe_costs_no_cpu(self):
        # The caller stops reading stdout; the jail has more to write. stockade
        # must wait for the pipe, not spin on it.
        r, w = os.pipe()
        p = subprocess.Popen(self.prefix() + [self.bin, "run", "-c",
                             "import sys, time\nsys.stdout.write('x' * (4 << 20)); sys.stdout.flush()\ntime.sleep(1)"],
                             stdout=w, stderr=subprocess.PIPE, env=self.env(), cwd=self.ws)
        self.procs.append(p)
        os.close(w)
        time.sleep(0.5)
        # setpriv execs, so p.pid is stockade itself.
        before = cpu_seconds(p.pid)
        time.sleep(2.0)
        spent = cpu_seconds(p.pid) - before
        got = 0
        with os.fdopen(r, "rb") as f:
            while chunk := f.read(1 << 16):
                got += len(chunk)
        p.wait(timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.read())
        self.assertEqual(got, 4 << 20)
        self.assertLess(spent, 0.6 if SANITIZED else 0.2, f"stockade used {spent:.2f} s of CPU waiting on a full pipe")


class KillModeTest(JailTest):
    THREAD = ("import ctypes, threading\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "def t():\n"
              "    libc.syscall(101, 16, 1, 0, 0)  # ptrace(PTRACE_ATTACH, 1)\n"
              "th = threading.Thread(target=t); th.start(); th.join()\n"
              "print('survived', flush=True)\n")

    def test_refused_call_in_a_thread_kills_the_process(self):
        out = self.host_py(self.THREAD)
        self.assertIn("survived", out.stdout)  # outside, the thread's call just fails
        result = self.path("result.json")
        t0 = time.monotonic()
        r = self.jail_py(self.THREAD, opts=("--set", "seccomp.default_action=kill", "--timeout", "20s",
                                            "--result", result))
        self.assertLess(time.monotonic() - t0, 10, "the thread hung in the refused call")
        self.assertNotIn("survived", r.stdout)
        self.assertEqual(r.returncode, 159, r.stderr)
        with open(result) as f:
            doc = json.load(f)
        self.assertEqual(doc["status"], "seccomp_violation")
        self.assertTrue(any(v["killed"] and v["syscall"] == "ptrace" for v in doc["violations"]))

    STACK = ("import ctypes, struct, sys\n"
             "libc = ctypes.CDLL(None, use_errno=True)\n"
             "PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2\n"
             "# ld [nr]; jeq 101 (ptrace) -> ERRNO(1) else ALLOW\n"
             "insns = [(0x20, 0, 0, 0), (0x15, 0, 1, 101), (0x06, 0, 0, 0x00050001), (0x06, 0, 0, 0x7fff0000)]\n"
             "buf = ctypes.create_string_buffer(b''.join(struct.pack('HBBI', *i) for i in insns))\n"
             "class Prog(ctypes.Structure):\n"
             "    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]\n"
             "prog = Prog(len(insns), ctypes.cast(buf, ctypes.c_void_p))\n"
             "libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)\n"
             "rc1 = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)\n"
             "rc2 = libc.syscall(317, 1, 0, ctypes.byref(prog))  # seccomp(SET_MODE_FILTER)\n"
             "print('stacked', rc1, rc2, flush=True)\n"
             "libc.syscall(101, 16, 1, 0, 0)\n"
             "print('survived', flush=True)\n")

    def test_a_stacked_filter_cannot_preempt_the_kill(self):
        out = self.host_py(self.STACK)
        self.assertIn("stacked 0 0", out.stdout)  # outside, a process may stack filters
        self.assertIn("survived", out.stdout)
        # errno mode: stacking is refused, so the later refusal is still stockade's, and recorded.
        result = self.path("result.json")
        r = self.jail_py(self.STACK, opts=("--result", result))
        self.assertIn("stacked -1 -1", r.stdout)
        with open(result) as f:
            calls = {v["syscall"] for v in json.load(f)["violations"]}
        self.assertLessEqual({"prctl", "seccomp", "ptrace"}, calls)
        # kill mode: the attempt to stack is itself a refused call, and kills.
        r = self.jail_py(self.STACK, opts=("--set", "seccomp.default_action=kill", "--result", result))
        self.assertNotIn("stacked", r.stdout)
        self.assertNotIn("survived", r.stdout)
        self.assertEqual(r.returncode, 159, r.stderr)
        with open(result) as f:
            doc = json.load(f)
        self.assertEqual(doc["status"], "seccomp_violation")
        self.assertTrue(any(v["killed"] and v["syscall"] == "prctl" for v in doc["violations"]))


class InitOutOfReachTest(JailTest):
    def test_program_cannot_prlimit_the_init(self):
        code = ("import os, resource, subprocess, sys\n"
                "target = int(sys.argv[1]) if len(sys.argv) > 1 else None\n"
                "if target is None:\n"
                "    p = subprocess.Popen(['sleep', '5']); target = p.pid\n"
                "try:\n"
                "    resource.prlimit(target, resource.RLIMIT_NOFILE, (3, 3)); print('changed')\n"
                "except OSError as e:\n"
                "    print('refused', e.errno)\n"
                "resource.prlimit(os.getpid(), resource.RLIMIT_CORE, (0, 0))\n"
                "resource.prlimit(0, resource.RLIMIT_CORE, (0, 0))\n"
                "print('self ok')\n")
        # Outside: a process may prlimit another of the same uid.
        out = self.host_py(code)
        self.assertIn("changed", out.stdout, out.stderr)
        r = self.jail_py(code, "1")
        self.assertOk(r)
        self.assertIn("refused 1", r.stdout)
        self.assertIn("self ok", r.stdout)

    def test_signals_from_inside_do_not_reach_the_init(self):
        # The init forwards SIGTERM to the program only when it comes from outside.
        code = ("import os, signal, time\n"
                "got = []\n"
                "signal.signal(signal.SIGTERM, lambda *a: got.append(1))\n"
                "for s in (signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP, signal.SIGINT):\n"
                "    os.kill(1, s)\n"
                "time.sleep(0.3)\n"
                "print('forwarded' if got else 'ignored', flush=True)\n")
        r = self.jail_py(code)
        self.assertOk(r)
        self.assertEqual(r.stdout, "ignored\n")


if __name__ == "__main__":
    main()
