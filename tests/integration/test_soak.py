"""serve as a shared service under a mixed, hostile load while its processes
are killed at random: every request is answered, no answer is wrong, the
server keeps serving everyone, its fds and memory do not grow with the tasks
it ran, and once it stops nothing of it is left on the host.

SOAK_SECONDS sets the length (40 by default; CI runs that, a soak runs hours).
"""
import json
import os
import random
import signal
import socket
import threading
import time

from harness import SANITIZED, main
from test_cleanup import host_mounts, tmp_entries
from test_serve import Conn, ServeBase, stockade_cgroups, wait_until

SECONDS = float(os.environ.get("SOAK_SECONDS", "40"))


def proc_stat(pid):
    """(ppid, start time) of a pid, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root):
    """Every process below root, as {pid: start time}."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                children.setdefault(st[0], []).append((int(d), st[1]))
    out, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), ()):
            out[pid] = start
            todo.append(pid)
    return out


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


class Load:
    """One client's loop of tasks, each checked against what it must answer."""

    def __init__(self, test, seed):
        self.t, self.rng = test, random.Random(seed)
        self.counts, self.wrong = {}, []

    def check(self, what, ok, r):
        self.counts[what] = self.counts.get(what, 0) + 1
        if not ok:
            self.wrong.append((what, {k: r.get(k) for k in ("status", "stdout", "stderr", "error", "message", "value")}))

    def ran_ok(self, r):
        return r.get("status") == "ok"

    # Each op: what a tenant sends, and what its answer must say. A task that
    # a fault killed may fail; a task that says ok must be right.
    def op_print(self, c):
        n = self.rng.randrange(1 << 30)
        r = c.call({"op": "run", "code": f"print({n})"})
        self.check("print", not self.ran_ok(r) or r["stdout"] == f"{n}\n", r)

    def op_numpy(self, c):
        n = self.rng.randrange(1, 5000)
        r = c.call({"op": "run", "code": f"import numpy; print(int(numpy.arange({n}).sum()))"})
        self.check("numpy", not self.ran_ok(r) or r["stdout"] == f"{n * (n - 1) // 2}\n", r)

    def op_files(self, c):
        s = "%x" % self.rng.randrange(1 << 64)
        r = c.call({"op": "run", "code": "open('out.txt', 'w').write(open('in/x.txt').read().upper())",
                    "files": {"in/x.txt": s}, "return_files": ["out.txt"]})
        self.check("files", not self.ran_ok(r) or r["files"]["out.txt"] == {"text": s.upper()}, r)

    def op_timeout(self, c):
        r = c.call({"op": "run", "code": "import time; time.sleep(60)", "timeout": 0.5})
        self.check("timeout", r.get("status") not in ("ok", None) or "error" in r, r)

    def op_forkbomb(self, c):
        r = c.call({"op": "run", "timeout": 1, "code": "import os\nwhile True:\n    try:\n        os.fork()\n"
                                                       "    except OSError:\n        pass"})
        self.check("forkbomb", r.get("status") != "ok", r)

    def op_memory(self, c):
        r = c.call({"op": "run", "timeout": 5, "code": "b = []\nwhile True:\n    b.append(bytearray(1 << 24))"})
        self.check("memory", r.get("status") != "ok", r)

    def op_flood(self, c):
        r = c.call({"op": "run", "code": "import sys\nfor _ in range(64): sys.stdout.write('x' * (1 << 20))"})
        self.check("flood", r.get("status") != "ok" or r.get("truncated") or len(r["stdout"]) == 64 << 20, r)

    def op_session(self, c):
        o = c.call({"op": "session.open", "idle_timeout": 3})
        if "session" not in o:
            return self.check("session", "error" in o, o)
        sid, n = o["session"], self.rng.randrange(1000)
        a = c.call({"op": "session.run", "session": sid, "code": f"x = {n}"})
        b = c.call({"op": "session.run", "session": sid, "code": "x + 1"})
        self.check("session", "error" in b or b.get("error") or b.get("value") == str(n + 1) or "error" in a, b)
        if self.rng.random() < 0.7:
            c.call({"op": "session.close", "session": sid})  # the rest are left to their idle timeout

    def op_rude(self, c):
        # Gone mid-request: a task it started, a line it never finished.
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.t.sock)
        if self.rng.random() < 0.5:
            s.sendall(b'{"id": 1, "op": "run", "code": "import time; time.sleep(30)"}\n')
            time.sleep(self.rng.random() * 0.3)
        else:
            s.sendall(b'{"id": 1, "op": "run", "co')
        s.close()
        self.counts["rude"] = self.counts.get("rude", 0) + 1

    def op_malformed(self, c):
        r = c.call({"op": "run", "code": 5})
        self.check("malformed", "error" in r, r)
        c.sock.sendall(b"{not json\n")
        r = c.recv()
        self.check("malformed", "error" in r, r)

    OPS = [("op_print", 8), ("op_numpy", 5), ("op_files", 3), ("op_timeout", 1), ("op_forkbomb", 1),
           ("op_memory", 1), ("op_flood", 1), ("op_session", 3), ("op_rude", 2), ("op_malformed", 1)]

    def run(self, until):
        names = [n for n, w in self.OPS for _ in range(w)]
        c = Conn(self.t.sock, timeout=90)
        try:
            while time.time() < until:
                getattr(self, self.rng.choice(names))(c)
        finally:
            c.close()


class SoakTest(ServeBase):
    def quiet(self, c, pool, timeout=60):
        """Waits until nothing runs and the pool is full again; returns stats."""
        st = {}

        def settled():
            nonlocal st
            st = c.call({"op": "stats"})
            return st["busy"] == 0 and st["sessions"] == 0 and st["queued"] == 0 and st["warm"] >= pool
        self.assertTrue(wait_until(settled, timeout), f"serve did not settle: {st}")
        return st

    def test_a_hostile_mixed_load_with_faults(self):
        before_mounts, before_tmp = host_mounts(), tmp_entries() - {os.path.basename(self.ws)}
        c = self.start_server("--preload", "numpy", "--max-jails", "8", "--idle-timeout", "3", pool=2)
        pid = self.server.pid
        # The fds and memory of a server that ran a few tasks: past its first
        # allocations, the figure to compare with at the end.
        for i in range(6):
            self.assertEqual(c.call({"op": "run", "code": f"print({i})"})["stdout"], f"{i}\n")
        self.quiet(c, 2)
        fds0, rss0 = fd_count(pid), rss_kb(pid)
        seen = {}  # every process the server ever had below it
        until = time.time() + SECONDS
        loads = [Load(self, seed) for seed in range(3)]
        errors = []

        def client(load):
            try:
                load.run(until)
            except Exception as e:  # a hang (socket timeout) or a dropped connection
                errors.append(f"{type(e).__name__}: {e}")
        threads = [threading.Thread(target=client, args=(l,)) for l in loads]
        for th in threads:
            th.start()
        # The faults: any process below the server (a template, a warm jail's
        # init, a task, a session) is killed now and then, as the OOM killer
        # or an operator might.
        killed, rng = 0, random.Random(7)
        while time.time() < until:
            time.sleep(rng.uniform(0.5, 2.0))
            below = descendants(pid)
            seen.update(below)
            if below:
                victim = rng.choice(sorted(below))
                if proc_stat(victim) and proc_stat(victim)[1] == below[victim]:
                    try:
                        os.kill(victim, signal.SIGKILL)
                        killed += 1
                    except ProcessLookupError:
                        pass
        for th in threads:
            th.join(120)
            self.assertFalse(th.is_alive(), "a client hung")
        self.assertEqual(errors, [])
        wrong = [w for l in loads for w in l.wrong]
        self.assertEqual(wrong, [], json.dumps(wrong[:3], indent=1)[:3000])
        counts = {}
        for l in loads:
            for k, v in l.counts.items():
                counts[k] = counts.get(k, 0) + v
        print(f"\nsoak: {SECONDS:.0f} s, {sum(counts.values())} requests {counts}, {killed} processes killed")
        self.assertGreater(killed, 0)
        self.assertGreater(counts.get("print", 0), 5)

        # Still serving everyone, with every kind of jail, once the last
        # fault has played out: a task may land on a jail the fault had
        # just killed (a template's death takes its ready forks with it),
        # and the loads above allow for that.
        c2 = self.connect()
        self.quiet(c2, 2, timeout=90)
        r = c2.call({"op": "run", "code": "print('after')"})
        self.assertEqual(r["stdout"], "after\n", r)
        r = c2.call({"op": "run", "code": "import numpy; print(numpy.arange(4).sum())"})
        self.assertEqual(r["stdout"], "6\n", r)
        sid = c2.call({"op": "session.open"})["session"]
        self.assertEqual(c2.call({"op": "session.run", "session": sid, "code": "40 + 2"})["value"], "42")
        c2.call({"op": "session.close", "session": sid})
        st = self.quiet(c2, 2, timeout=90)
        print(f"soak: served {st['served']}, failures {st['failures']}, template forks {st['template_forks']}, "
              f"template failures {st['template_failures']}")
        # Nothing grew with the tasks: a leak of one fd or a few KiB a task
        # would show hundreds here.
        fds1, rss1 = fd_count(pid), rss_kb(pid)
        print(f"soak: server fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} KiB")
        self.assertLessEqual(fds1, fds0 + 24)
        if not SANITIZED:
            self.assertLess(rss1 - rss0, 16 * 1024)

        # Stopped, it leaves nothing: no process, cgroup, mount or file.
        seen.update(descendants(pid))
        self.assertEqual(self.stop_server(), 0)
        alive = [p for p, start in seen.items() if proc_stat(p) and proc_stat(p)[1] == start]
        self.assertEqual(alive, [])
        self.assertEqual(stockade_cgroups(pid), [])
        self.assertEqual(host_mounts(), before_mounts)
        left = tmp_entries() - before_tmp - {os.path.basename(self.ws)}
        self.assertEqual(sorted(e for e in left if e.startswith("stockade")), [])


if __name__ == "__main__":
    main()
