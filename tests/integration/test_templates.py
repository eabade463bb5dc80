"""serve's templates: a python that imported the preloads once forks each
pool jail, which then makes its own namespaces, mounts, cgroup, Landlock rules
and filter before any task reaches it. Each security test first shows the
attack working where nothing stands in its way (forks of one process, or one
reused python, on the host), then failing between forked jails, and against
the template itself."""
import ctypes
import json
import os
import signal
import statistics
import subprocess
import time

from harness import LEAVE_DAEMON, PY, host_pids_with_cmdline, main
from test_serve import ServeBase, wait_until

# In a forked jail, the command line is the template's: a task can tell.
FORKED = "print('template:task' in open('/proc/self/cmdline').read())"


def page_faults_counter(pid):
    """A perf counter of the page faults (the CPU's exceptions, not the pages a
    madvise populates) of pid and of every process it starts from now on; their
    counts join it when they exit. None where perf events are not allowed."""
    attr = (ctypes.c_uint64 * 16)()  # struct perf_event_attr, 128 bytes
    attr[0] = 1 | (128 << 32)  # PERF_TYPE_SOFTWARE, its size
    attr[1] = 2  # PERF_COUNT_SW_PAGE_FAULTS
    attr[5] = 1 << 1  # inherit
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(298, attr, pid, -1, -1, 0)  # perf_event_open, x86_64
    return fd if fd >= 0 else None


def read_counter(fd):
    return int.from_bytes(os.read(fd, 8), "little")


class TemplateTest(ServeBase):
    def start_forking(self, *args, pool=2):
        """A server whose pool jails, from now on, are all forks of its template."""
        c = self.start_server(*args, pool=pool)
        # The pool's first jails may have started before the template was
        # ready: once it has forked one, tasks use up the pool, and every
        # refill after is a fork.
        deadline = time.time() + 60
        while c.call({"op": "stats"})["template_forks"] == 0 and time.time() < deadline:
            c.call({"op": "run", "code": "pass"})
            self.wait_warm(c, pool)
        for _ in range(pool):
            c.call({"op": "run", "code": "pass"})
        self.wait_warm(c, pool)
        st = c.call({"op": "stats"})
        self.assertEqual(st["template_failures"], 0, st)
        return c

    def run_forked(self, c, code, *argv):
        self.wait_warm(c, 1)
        r = c.call({"op": "run", "code": FORKED + "\n" + code, "argv": list(argv)})
        self.assertEqual(r["status"], "ok", r)
        first, _, rest = r["stdout"].partition("\n")
        self.assertEqual(first, "True", r)  # ran in a fork of the template
        self.assertTrue(r["warm"], r)
        return rest, r

    def template_pythons(self):
        """The host pids of the template pythons themselves (not of their forks,
        which share their command line but live one PID namespace deeper)."""
        def depth(p):
            try:
                with open(f"/proc/{p}/status") as f:
                    return next(len(l.split()) - 1 for l in f if l.startswith("NSpid:"))
            except (OSError, StopIteration):
                return 0
        def parent(p):
            try:
                with open(f"/proc/{p}/status") as f:
                    return next(int(l.split()[1]) for l in f if l.startswith("PPid:"))
            except (OSError, StopIteration):
                return 0
        pids = host_pids_with_cmdline("template:task")
        # Not a fork on its way to making its jail (a child of the template).
        return sorted(p for p in pids if depth(p) == 2 and parent(p) not in pids)

    # ---- it is what it says --------------------------------------------------

    def test_a_forked_jail_is_a_jail_of_its_own(self):
        c = self.start_forking()
        out, r = self.run_forked(c, (
            "import os\n"
            "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
            "print([status[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp')])\n"
            "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
            "print(sorted(os.listdir('/proc/self/fd')))\n"
            "print(os.getuid(), os.uname().nodename, all(l.endswith(':/') for l in open('/proc/self/cgroup').read().split()))\n"
            "print([l.split()[1] for l in open('/proc/self/mounts') if l.split()[1] in ('/tmp', '/work', '/dev/shm', '/proc')])"))
        caps, pids, fds, ident, mounts = out.splitlines()
        self.assertEqual(caps, str(["0000000000000000"] * 5 + ["1", "2"]), r)
        self.assertEqual(pids, "['1', '2']", r)           # its init and itself: a PID namespace of its own
        self.assertEqual(fds, "['0', '1', '2', '3', '5']", r)  # stdio, listdir's own fd, the control socket
        self.assertEqual(ident, "1000 stockade True", r)    # its own cgroup namespace, rooted at its cgroup
        # Its own scratch and /proc, mounted over the template's.
        for m in ("/tmp", "/work", "/dev/shm", "/proc"):
            self.assertIn(repr(m), mounts, r)
        # The figures of a fork are its own: the CPU it used, not none.
        r = c.call({"op": "run", "code": "x = 0\nfor i in range(3000000): x += i"})
        self.assertGreater(r["cpu_user_ms"] + r["cpu_sys_ms"], 20, r)
        # The seccomp filter holds, and its refusals are reported.
        out, r = self.run_forked(c, "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                                    "print(libc.unshare(0x10000000), ctypes.get_errno())")
        self.assertEqual(out, "-1 1\n", r)
        self.assertTrue(any(v["syscall"] == "unshare" for v in r["violations"]), r)
        # Landlock's exec rules: what the profile does not allow does not run,
        # and what it allows does, in every fork (the template made the rules
        # once; each fork applies them).
        for _ in range(2):
            out, r = self.run_forked(c, "import os, shutil, subprocess\n"
                                        "shutil.copy('/usr/bin/true', '/tmp/mine'); os.chmod('/tmp/mine', 0o755)\n"
                                        "print(subprocess.run(['/usr/bin/true']).returncode)\n"
                                        "try:\n    subprocess.run(['/tmp/mine']); print('ran')\n"
                                        "except PermissionError: print('refused')")
            self.assertEqual(out, "0\nrefused\n", r)

    # ---- nothing of one task reaches the next --------------------------------

    LEAVE = ("import os, sys, random, ctypes\n"
             "for p in ('/tmp/left', '/work/left', os.path.expanduser('~/left'), '/dev/shm/left'): open(p, 'w').write('x')\n"
             "libc = ctypes.CDLL(None, use_errno=True)\n"
             "print('shm', libc.shmget(0x5717, 4096, 0o1666))\n"  # IPC_CREAT | 0666
             "import socket\ns = socket.socket(socket.AF_UNIX); s.bind('\\0stockade-left'); s.listen()\n"
             "import numpy; numpy.sum = lambda *a, **k: 'PWNED'\n"
             "m, sl = os.openpty()\n"
             "print('draw', random.random(), numpy.random.randint(0, 1 << 30))\n"
             + LEAVE_DAEMON)
    LOOK = ("import os, sys, random, ctypes, socket, numpy\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "seen = [p for p in ('/tmp/left', '/work/left', os.path.expanduser('~/left'), '/dev/shm/left') if os.path.exists(p)]\n"
            "if libc.shmget(0x5717, 0, 0) >= 0: seen.append('shm')\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n    s.connect('\\0stockade-left'); seen.append('socket')\nexcept OSError: pass\n"
            "if numpy.sum([1, 2]) == 'PWNED': seen.append('patch')\n"
            "seen += [p for p in os.listdir('/proc') if p.isdigit() and b'DAEMON' in open('/proc/%s/cmdline' % p, 'rb').read()]\n"
            "seen += [p for p in os.listdir('/dev/pts') if p != 'ptmx']\n"
            "print('seen', seen)\n"
            "print('draw', random.random(), numpy.random.randint(0, 1 << 30))\n")

    def test_nothing_of_one_task_reaches_the_next(self):
        marker = f"DAEMON-{os.getpid()}-{time.time_ns()}"
        # Without fresh jails: one process that imported numpy, forked twice
        # as a naive zygote would, gives both children the same draws; and one
        # reused python keeps the files, the segment, the socket, the patch,
        # the pty and the daemon of the task before.
        scratch = self.mkdir("scratch", 0o777)
        here = lambda code: (code.replace("'/tmp/left'", repr(scratch + "/t")).replace("'/work/left'", repr(scratch + "/w"))
                             .replace("os.path.expanduser('~/left')", repr(scratch + "/h"))
                             .replace("'/dev/shm/left'", repr(scratch + "/s")))
        naive = ("import os, random, numpy\n"
                 "for _ in range(2):\n"
                 "    if os.fork() == 0:\n"
                 "        print(numpy.random.randint(0, 1 << 30), flush=True); os._exit(0)\n"
                 "    os.wait()\n")
        draws = self.host_py(naive).stdout.split()
        self.assertEqual(len(draws), 2)
        self.assertEqual(draws[0], draws[1])
        both = self.host_py(here(self.LEAVE) + "\n" + here(self.LOOK), marker).stdout
        try:
            seen = next(l for l in both.splitlines() if l.startswith("seen"))
            for what in ("/t", "/w", "/h", "/s", "'shm'", "'socket'", "'patch'"):
                self.assertIn(what, seen, both)
            self.assertTrue(host_pids_with_cmdline(marker))
        finally:
            for pid in host_pids_with_cmdline(marker):
                os.kill(pid, signal.SIGKILL)
            subprocess.run(["ipcrm", "-M", str(0x5717)], capture_output=True)
        # Forks of one template: none of it, and draws of their own.
        c = self.start_forking("--preload", "numpy")
        left, r = self.run_forked(c, self.LEAVE, marker)
        self.assertTrue(left.startswith("shm "), r)
        self.assertNotEqual(left.split()[1], "-1", r)
        self.assertEqual(host_pids_with_cmdline(marker), [])  # the daemon went with its jail
        draws = {left.splitlines()[1]}
        for _ in range(3):
            self.wait_warm(c, 2)
            out, r = self.run_forked(c, self.LOOK)
            self.assertEqual(out.splitlines()[0], "seen []", r)
            draws.add(out.splitlines()[1])
        self.assertEqual(len(draws), 4, draws)

    # ---- the template itself is out of reach ---------------------------------

    def test_a_task_cannot_signal_trace_or_reach_the_template(self):
        # Without the jail: a process of one uid signals, traces and reads
        # another at will.
        victim = subprocess.Popen(self.prefix() + [PY, "-c", "import time; time.sleep(30)"])
        self.procs.append(victim)
        attack = ("import ctypes, os, sys\n"
                  "pid = int(sys.argv[1])\n"
                  "libc = ctypes.CDLL(None, use_errno=True)\n"
                  "out = []\n"
                  "out.append(libc.ptrace(16, pid, 0, 0))\n"  # PTRACE_ATTACH
                  "try:\n    open('/proc/%d/environ' % pid, 'rb').read(); out.append('read')\n"
                  "except OSError as e: out.append(e.errno)\n"
                  "os.kill(pid, 9); out.append('killed')\n"
                  "print(out)")
        out = self.host_py(attack, str(victim.pid)).stdout
        self.assertIn("killed", out)
        self.assertIn("read", out)
        victim.wait(5)
        # Through the server: the template is in no namespace the task can
        # name, and everything the task can reach (its own init included)
        # is unmoved by what it tries.
        c = self.start_forking()
        before = self.template_pythons()
        self.assertEqual(len(before), 1, before)
        tpid = before[0]
        sweep = ("import ctypes, os, signal, socket\n"
                 "libc = ctypes.CDLL(None, use_errno=True)\n"
                 "hits = []\n"
                 "for pid in range(1, 4096):\n"
                 "    if pid == os.getpid(): continue\n"
                 "    if libc.ptrace(16, pid, 0, 0) == 0: hits.append(('traced', pid))\n"
                 "    if libc.syscall(434, pid, 0) >= 0: hits.append(('pidfd', pid))\n"  # pidfd_open
                 "    try:\n        os.kill(pid, 0); hits.append(('signal', pid))\n    except OSError: pass\n"
                 "for path in ('/proc/1/mem', '/proc/1/environ', '/proc/1/root/proc/1/environ'):\n"
                 "    try:\n        open(path, 'rb').read(1); hits.append(path)\n    except OSError: pass\n"
                 "print(hits)\n"
                 "for pid in range(1, 4096):\n"
                 "    if pid != os.getpid():\n"
                 "        try: os.kill(pid, signal.SIGKILL)\n        except OSError: pass\n"
                 "try: os.kill(-1, signal.SIGKILL)\nexcept OSError: pass\n"
                 "print('alive')\n")
        r = c.call({"op": "run", "code": FORKED + "\n" + sweep})
        lines = r["stdout"].splitlines()
        self.assertEqual(lines[0], "True", r)
        # Only its own init answers a probe (a pidfd and kill(1, 0) are open
        # to any process of the jail), and nothing can be traced or read.
        self.assertEqual(lines[1], "[('pidfd', 1), ('signal', 1)]", r)
        self.assertEqual(lines[2], "alive", r)  # SIGKILL to its init does nothing from inside
        # The template lives on, and the next task is a fork of it.
        self.assertEqual(self.template_pythons(), before)
        self.assertTrue(os.path.exists(f"/proc/{tpid}"))
        self.wait_warm(c, 2)
        out, r = self.run_forked(c, "print('next')")
        self.assertEqual(out, "next\n", r)
        self.assertEqual(self.template_pythons(), before)

    # ---- the pool, the sessions and the stats --------------------------------

    def test_sessions_fork_from_a_template_with_the_preloads(self):
        c = self.start_server("--preload", "numpy")
        deadline = time.time() + 60
        while time.time() < deadline:
            st = c.call({"op": "stats"})
            if st["session_warm"] >= 1 and st["template_forks"] >= 3:
                break
            # The first session jail may predate its template: use it up.
            if st["session_warm"] >= 1:
                sid = c.call({"op": "session.open"})["session"]
                c.call({"op": "session.close", "session": sid})
            time.sleep(0.05)
        t = time.time()
        sid = c.call({"op": "session.open"})["session"]
        opened_ms = (time.time() - t) * 1000
        r = c.call({"op": "session.run", "session": sid, "code": "import sys\n'numpy' in sys.modules, "
                                                                 "'template:session' in open('/proc/self/cmdline').read()"})
        self.assertEqual(r["value"], "(True, True)", r)
        c.call({"op": "session.run", "session": sid, "code": "x = 41"})
        self.assertEqual(c.call({"op": "session.run", "session": sid, "code": "x + 1"})["value"], "42")
        self.assertLess(opened_ms, 2000)

    def test_a_template_that_dies_is_rebuilt_and_the_pool_serves_meanwhile(self):
        c = self.start_forking()
        # Four deaths, each after a fork of the template before served: the
        # pause (1 s, doubling with failures in a row) starts over each time,
        # so the fourth template is back as soon as the first was, not 8 s on.
        for death in range(1, 5):
            before = self.template_pythons()
            self.assertEqual(len(before), 1, before)
            os.kill(before[0], signal.SIGKILL)
            killed = time.time()
            # Served meanwhile (cold, or from jails forked before).
            r = c.call({"op": "run", "code": "print('still')"})
            self.assertEqual(r["stdout"], "still\n", r)
            self.assertTrue(wait_until(lambda: c.call({"op": "stats"})["template_failures"] >= death, 10))
            # A new template, and forks from it again.
            self.assertTrue(wait_until(lambda: len(self.template_pythons()) == 1 and self.template_pythons() != before,
                                       30), self.template_pythons())
            back = time.time() - killed
            # Until forks of the new template have served (the jails forked
            # before may hold the pool until then).
            forks = c.call({"op": "stats"})["template_forks"]
            deadline = time.time() + 30
            while time.time() < deadline and c.call({"op": "stats"})["template_forks"] < forks + 3:
                c.call({"op": "run", "code": "pass"})
            self.wait_warm(c, 2)
            r = c.call({"op": "run", "code": FORKED})
            self.assertEqual(r["stdout"], "True\n", r)
        self.assertLess(back, 5, "the fourth template waited the pause of four failures in a row")

    def test_a_ready_fork_killed_while_idle_is_not_its_templates_failure(self):
        c = self.start_forking()
        t = self.template_pythons()
        self.assertEqual(len(t), 1, t)
        forks = [p for p in host_pids_with_cmdline("template:task") if p not in t]
        self.assertTrue(forks, "no ready fork to kill")
        for p in forks:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # The pool refills from the same template, which has not failed.
        deadline = time.time() + 30
        forked = c.call({"op": "stats"})["template_forks"]
        while time.time() < deadline and c.call({"op": "stats"})["template_forks"] <= forked:
            time.sleep(0.05)
        self.wait_warm(c, 2)
        st = c.call({"op": "stats"})
        self.assertEqual(st["template_failures"], 0, st)
        self.assertEqual(self.template_pythons(), t)
        out, _ = self.run_forked(c, "print('after')")
        self.assertEqual(out, "after\n")

    def test_a_task_never_lands_on_a_ready_fork_that_just_died(self):
        c = self.start_forking()
        t = self.template_pythons()
        forks = [p for p in host_pids_with_cmdline("template:task") if p not in t]
        self.assertTrue(forks, "no ready fork to kill")
        # The server is stopped while its ready forks die and a task comes,
        # so that one round of its loop sees both: the task first, as its
        # client is older than these jails.
        os.kill(self.server.pid, signal.SIGSTOP)
        try:
            for p in forks:
                os.kill(p, signal.SIGKILL)
            # Reaped by their inits, which then report and exit.
            self.assertTrue(wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in forks), 10))
            time.sleep(0.3)
            rid = c.send({"op": "run", "code": "print('after')"})
            time.sleep(0.1)
        finally:
            os.kill(self.server.pid, signal.SIGCONT)
        r = c.wait(rid)
        self.assertEqual((r["status"], r["stdout"]), ("ok", "after\n"), r)

    def test_a_task_cannot_take_the_quotas_of_the_tasks_beside_it(self):
        # inotify instances are counted per user at every user namespace up
        # the chain, and every fork of a template is one user at the
        # template's level: one task taking all it can leaves the next none,
        # unless each fork has a share of its own.
        c = self.start_forking()
        grab = ("import ctypes, time\nlibc = ctypes.CDLL(None, use_errno=True)\nn = 0\n"
                "while n < 100000 and libc.inotify_init() >= 0: n += 1\n"
                "print(n, ctypes.get_errno(), flush=True)\ntime.sleep(3)")
        probe = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                 "print(libc.inotify_init() >= 0, ctypes.get_errno())")
        hog = self.connect()
        self.wait_warm(c, 2)
        rid = hog.send({"op": "run", "code": FORKED + "\n" + grab})
        time.sleep(1.0)  # it holds all it could get by now
        out, _ = self.run_forked(c, probe)
        self.assertEqual(out.split()[0], "True", out)
        r = hog.wait(rid)
        first, n, err = r["stdout"].split()
        self.assertEqual(first, "True", r)  # the hog was a fork too
        self.assertEqual(err, "24", r)  # EMFILE: it met its limit
        with open("/proc/sys/fs/inotify/max_user_instances") as f:
            host = int(f.read())
        self.assertEqual(int(n), max(1, host // 64), r)  # an eighth of the template jail's eighth

    def test_a_template_that_hangs_does_not_stall_the_server(self):
        c = self.start_forking()
        t = self.template_pythons()
        self.assertEqual(len(t), 1, t)
        # Stopped, it takes fork requests and answers none. The server asks
        # and serves on: no one waits on a fork but the jail it would be.
        os.kill(t[0], signal.SIGSTOP)
        try:
            other = self.connect()
            for i in range(3):
                # Each refill asks the stopped template; the third task gets
                # a fork that never comes, then (10 s on) a jail in its place.
                r = c.call({"op": "run", "code": f"print({i})"})
                self.assertEqual(r["stdout"], f"{i}\n", r)
                t0 = time.time()
                st = other.call({"op": "stats"})
                self.assertLess(time.time() - t0, 1.0, "the server waited on the template")
            # Each fork it never made fails after 10 s; the pool starts its jails cold.
            self.assertTrue(wait_until(lambda: other.call({"op": "stats"})["template_failures"] >= 1, 20))
            st = other.call({"op": "stats"})
            self.assertIn("no answer from the task's init in 10 s", st["template_error"], st)
            self.assertEqual(c.call({"op": "run", "code": "print('cold')"})["stdout"], "cold\n")
        finally:
            try:
                os.kill(t[0], signal.SIGCONT)
            except ProcessLookupError:
                pass  # retired and killed by the server, as it should be

    def test_stats_report_the_templates_memory(self):
        c = self.start_forking("--preload", "numpy")
        deadline = time.time() + 30
        m = {}
        while time.time() < deadline:
            m = c.call({"op": "stats", "memory": True})["memory"]
            if not m["partial"] and m.get("template_pss_bytes") and c.call({"op": "stats"})["session_warm"] >= 1:
                break
            time.sleep(1.1)
        self.assertTrue(m.get("template_pss_bytes"), m)
        for b in m["template_pss_bytes"]:
            # python with numpy, its pages split with the jails forked from it
            self.assertGreater(b, 2 << 20, m)
            self.assertLess(b, 200 << 20, m)
        # A fork counts its share of the template's pages, not all of them.
        for b in m["warm_pss_bytes"]:
            self.assertGreater(b, 1 << 20, m)
            self.assertLess(b, 200 << 20, m)

    def test_a_fork_takes_the_pages_it_writes_in_bulk_not_by_fault(self):
        """Each page a fork's python writes is a copy of its template's, and a
        page fault each costs three times what one madvise per run of pages
        does. A trial fork at the template's start finds which pages a
        program writes (and which code pages it reads) before its answer;
        every fork then takes them in bulk. Counted by perf over the
        template's forks: a program's minor faults (which count the pages a
        madvise populates too) against its page-fault exceptions (which do
        not). Without the bulk step the two are equal."""
        c = self.start_forking(pool=1)
        tpl = self.template_pythons()
        self.assertEqual(len(tpl), 1, tpl)
        fd = page_faults_counter(tpl[0])
        if fd is None:
            self.skipTest("perf_event_open: " + os.strerror(ctypes.get_errno()))
        try:
            # The fork waiting now began before the counter: used up first.
            self.run_forked(c, "pass")
            time.sleep(0.5)
            before = read_counter(fd)
            n, minflt = 8, []
            for _ in range(n):
                out, _ = self.run_forked(c, "print(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[7])")
                minflt.append(int(out.split()[0]))
            # A fork's counts join the counter when its processes have exited.
            time.sleep(1)
            faults = (read_counter(fd) - before) / n
        finally:
            os.close(fd)
        # Each fork's faults: its program's, its init's, and the template's
        # own after that fork, against its program's faults and populated pages.
        self.assertLess(faults, 0.6 * statistics.median(minflt), (faults, minflt))

    def test_a_templates_code_is_on_huge_pages_its_forks_share(self):
        """A fork maps its template's code a page at a time, as it runs it: a
        fault each, and on a VM that shadows page tables an exit to the
        hypervisor too. The template copies its code once to huge pages,
        which every fork inherits whole. Checked from inside a forked task:
        its code is on anonymous huge pages, and they hold the executable's
        bytes exactly. A python on the host has none."""
        try:
            with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
                thp = f.read()
        except OSError as e:
            self.skipTest("no transparent huge pages here: %s" % e)
        if "[never]" in thp:
            self.skipTest("transparent huge pages are off on this host ([never])")
        probe = (
            "import ctypes, os, struct, sys\n"
            "exe = os.path.realpath(sys.executable)\n"
            "data = open(exe, 'rb').read()\n"
            "phoff, = struct.unpack_from('<Q', data, 32)\n"
            "phentsize, phnum = struct.unpack_from('<HH', data, 54)\n"
            "loads = []\n"
            "for i in range(phnum):\n"
            "    typ, flags, off, vaddr, paddr, filesz = struct.unpack_from('<IIQQQQ', data, phoff + i * phentsize)\n"
            "    if typ == 1: loads.append((vaddr, off, filesz))\n"
            "pie = struct.unpack_from('<H', data, 16)[0] == 3\n"
            "region, huge = None, []\n"
            "for line in open('/proc/self/smaps'):\n"
            "    f = line.split()\n"
            "    if '-' in f[0] and len(f) >= 5 and not f[0].endswith(':'):\n"
            "        lo, hi = (int(x, 16) for x in f[0].split('-'))\n"
            "        region = (lo, hi, f[1], len(f) > 5)\n"
            "    elif f[0] == 'AnonHugePages:' and int(f[1]) >= 2048 and 'x' in region[2] and not region[3]:\n"
            "        huge.append(region)\n"
            "same = checked = 0\n"
            "for lo, hi, perms, named in huge:\n"
            "    mem = ctypes.string_at(lo, hi - lo)\n"
            "    for vaddr, off, filesz in loads:\n"
            "        a, b = max(lo, vaddr), min(hi, vaddr + filesz)\n"
            "        if a < b and not pie:\n"
            "            checked += 1\n"
            "            same += mem[a - lo:b - lo] == data[off + a - vaddr:off + b - vaddr]\n"
            "print(len(huge), checked, same)\n")
        # On the host: python's code is the file's pages, none of it huge.
        out = self.host_py(probe).stdout.split()
        self.assertEqual(out[0], "0", out)
        c = self.start_forking()
        for _ in range(3):
            out, r = self.run_forked(c, probe)
            blocks, checked, same = (int(x) for x in out.split())
            self.assertGreaterEqual(blocks, 1, r)
            # Debian's python3 is not position-independent: where its code
            # lies is where the file says, and the copy is byte for byte.
            if checked:
                self.assertEqual(same, checked, r)
        # And it runs: a task through the compiler, json and re.
        out, r = self.run_forked(c, "import json, re; print(json.dumps(re.findall(r'\\d+', 'a1b22c333')))")
        self.assertEqual(out, '["1", "22", "333"]\n', r)

    def test_code_on_huge_pages_leaves_a_mappings_gaps_alone(self):
        """A library's segments may have unreadable gaps of the same file
        between them. A template that copied a block holding one would fault
        on its own memory and die. A preload maps python's executable as
        code, a gap and constants, each 2 MiB and aligned: in every fork the
        code is on a huge page of its own, and the gap and the constants
        (no code in their run) are left as they were."""
        mods = self.mkdir("mods")
        self.write("mods/gapped.py", (
            "import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.mmap.restype = ctypes.c_void_p\n"
            "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, "
            "ctypes.c_long]\n"
            "M = 2 << 20\n"
            "fd = os.open(os.path.realpath('/usr/bin/python3'), os.O_RDONLY)\n"
            "raw = libc.mmap(None, 4 * M, 0, 0x22, -1, 0)\n"  # PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS
            "BASE = (raw + M - 1) & ~(M - 1)\n"
            "for i, prot in enumerate((5, 0, 1)):\n"  # r-x, ---, r--
            "    assert libc.mmap(BASE + i * M, M, prot, 0x12, fd, i * M) == BASE + i * M\n"  # MAP_PRIVATE | MAP_FIXED
            "os.close(fd)\n"))
        show = ("import gapped\n"
                "M = 2 << 20\n"
                "maps = {}\n"
                "for line in open('/proc/self/smaps'):\n"
                "    f = line.split()\n"
                "    if '-' in f[0] and len(f) >= 5 and not f[0].endswith(':'):\n"
                "        lo = int(f[0].split('-')[0], 16)\n"
                "        cur = maps[lo] = [f[1], f[5] if len(f) > 5 else '', 0]\n"
                "    elif f[0] == 'AnonHugePages:':\n"
                "        cur[2] = int(f[1])\n"
                "for i in range(3):\n"
                "    perms, path, huge = maps[gapped.BASE + i * M]\n"
                "    print(perms, 'file' if path else 'anon', huge)\n")
        # On the host: the file's code, its gap and its constants, none huge.
        r = self.host_py("import sys; sys.path.insert(0, %r)\n" % mods + show)
        self.assertEqual(r.stdout, "r-xp file 0\n---p file 0\nr--p file 0\n", r)
        c = self.start_forking("--ro", mods + ":/opt/mods", "--env", "PYTHONPATH=/opt/mods", "--preload", "gapped")
        for _ in range(3):
            out, r = self.run_forked(c, show)
            self.assertEqual(out, "r-xp anon 2048\n---p file 0\nr--p file 0\n", r)
        st = c.call({"op": "stats"})
        self.assertEqual((st["template_failures"], st["template_error"]), (0, ""), st)

    def test_code_on_huge_pages_stays_within_the_templates_memory_limit(self):
        """The copies are charged to the template. Under a small memory limit
        a template of numpy that copied all of its code (10 blocks, 20 MiB)
        passed the limit and was killed before its first fork, every time:
        the pool never forked. It copies only what fits in half its limit
        beside what it holds, here nothing, and forks as before."""
        c = self.start_server(pool=1)
        if c.call({"op": "run", "code": "pass"})["cgroup"] is None:
            # An address-space rlimit, in which numpy does not even load in 32M.
            self.skipTest("no cgroup here: the memory limit is RLIMIT_AS, not a charge")
        self.stop_server()
        c = self.start_forking("--preload", "numpy", "--set", "limits.memory=32M")
        huge = ("print(sum(1 for l in open('/proc/self/smaps') "
                "if l.startswith('AnonHugePages:') and int(l.split()[1]) >= 2048))")
        out, r = self.run_forked(c, "import numpy\n" + huge)
        self.assertEqual(out, "0\n", r)
        st = c.call({"op": "stats"})
        self.assertEqual((st["template_failures"], st["template_error"]), (0, ""), st)

    def test_a_template_forks_without_threads_openblas_included(self):
        # A fork copies only its calling thread. numpy on OpenBLAS starts a
        # pool of BLAS threads when imported: a template holding one would
        # hand each fork a BLAS that waits on threads that are not there
        # (the fork hung in OpenBLAS's at-fork handler, or its first matmul).
        n = self.host_py("import numpy, os; print(len(os.listdir('/proc/self/task')))")
        if int(n.stdout) == 1:
            # Debian's default BLAS is the reference one, with no threads
            # (libopenblas0-pthread brings the pool; the next test shows the
            # rule with a thread of its own on every machine).
            self.skipTest("this numpy starts no BLAS threads")
        c = self.start_forking("--preload", "numpy")
        code = ("import numpy as np, os\na = np.ones((300, 300))\nprint((a @ a)[0, 0], "
                "len(os.listdir('/proc/self/task')), 'OPENBLAS_NUM_THREADS' in os.environ)")
        for _ in range(12):
            self.wait_warm(c, 1)
            r = c.call({"op": "run", "code": FORKED + "\n" + code, "timeout": 20})
            self.assertEqual(r["status"], "ok", r)
            # A fork, one thread, the matmul done; the variable the template
            # set for its own imports is not the task's.
            self.assertEqual(r["stdout"], "True\n300.0 1 False\n", r)
        self.assertEqual(c.call({"op": "stats"})["template_failures"], 0)

    def test_a_template_whose_preloads_start_threads_is_not_forked(self):
        mods = self.mkdir("mods")
        self.write("mods/spins.py", "import threading, time\n"
                   "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n")
        # The module does start a thread.
        n = self.host_py("import sys, os; sys.path.insert(0, %r); import spins; "
                         "print(len(os.listdir('/proc/self/task')))" % mods)
        self.assertEqual(n.stdout, "2\n", n)
        c = self.start_server("--ro", mods + ":/opt/mods", "--env", "PYTHONPATH=/opt/mods", "--preload", "spins")
        self.assertTrue(wait_until(lambda: c.call({"op": "stats"})["template_failures"] >= 1, 30))
        st = c.call({"op": "stats"})
        self.assertIn("left 2 threads running", st["template_error"], st)
        # The pool serves on, each jail a python of its own with its thread.
        for _ in range(3):
            self.wait_warm(c, 1)
            r = c.call({"op": "run", "code": FORKED + "\nimport os\nprint(len(os.listdir('/proc/self/task')))"})
            self.assertEqual(r["stdout"], "False\n2\n", r)
        self.assertEqual(c.call({"op": "stats"})["template_forks"], 0)

    def test_a_template_whose_trial_fork_hangs_still_starts(self):
        # The template learns a fork's pages from a trial fork that runs a
        # task's way through the runner, the preloads' exit handlers included.
        # One that never returns holds the trial, not the template: the
        # template starts without what it would have learnt.
        mods = self.mkdir("mods")
        self.write("mods/lingers.py", "import atexit, time\natexit.register(time.sleep, 3600)\n")
        n = self.host_py("import sys, subprocess\n"
                         "subprocess.run([sys.executable, '-c', 'import lingers'], env={'PYTHONPATH': %r}, timeout=2)"
                         % mods)
        self.assertIn("TimeoutExpired", n.stderr)  # its exit does hang
        c = self.start_server("--ro", mods + ":/opt/mods", "--env", "PYTHONPATH=/opt/mods", "--preload", "lingers",
                              pool=1, wait_warm=False)
        # Ready (the server reports a ready template's memory), well before
        # the 60 s a jail has to get ready.
        self.assertTrue(wait_until(lambda: c.call({"op": "stats", "memory": True})["memory"]["template_pss_bytes"], 30),
                        c.call({"op": "stats"}))
        st = c.call({"op": "stats"})
        self.assertEqual(st["template_failures"], 0, st)
        # Its forks serve; each task's own exit handlers are the task's (its
        # time limit ends them). The first jail may predate the template.
        code = FORKED + "\nimport sys\nsys.stdout.flush()"
        for _ in range(4):
            self.wait_warm(c, 1)
            r = c.call({"op": "run", "code": code, "timeout": 2})
            self.assertEqual(r["status"], "timeout_wall", r)
            if r["stdout"] == "True\n":
                break
        self.assertEqual(r["stdout"], "True\n", r)

    def test_a_jail_that_never_gets_ready_fails_its_task_not_the_server(self):
        # A preload that hangs from its second import on: the first jail
        # (the server's start-up check) gets ready, every refill never does.
        # A task given one of those is answered when the jail's 60 s to get
        # ready run out, and the server answers others all along.
        state = self.mkdir("state", 0o777)
        mods = self.mkdir("mods")
        self.write("mods/stall.py", "import os, time\nif os.path.exists('/state/seen'):\n    time.sleep(3600)\n"
                   "open('/state/seen', 'w').close()\n")
        c = self.start_server("--no-templates", "--ro", mods + ":/opt/mods", "--rw", state + ":/state", "--env",
                              "PYTHONPATH=/opt/mods", "--preload", "stall", pool=1)
        self.assertEqual(c.call({"op": "run", "code": "print(1)"})["stdout"], "1\n")
        other = self.connect()
        t0 = time.time()
        rid = c.send({"op": "run", "code": "print(2)"})
        time.sleep(1)
        self.assertIn("served", other.call({"op": "stats"}))
        c.sock.settimeout(120)
        r = c.wait(rid)
        took = time.time() - t0
        self.assertEqual(r["error"]["code"], "jail_failed", r)
        self.assertIn("did not get ready in 60 s", r["error"]["message"], r)
        self.assertGreater(took, 55, r)
        self.assertLess(took, 75, r)

    def test_no_templates_starts_each_jail_as_before(self):
        c = self.start_server("--no-templates")
        for _ in range(3):
            self.wait_warm(c, 2)
            r = c.call({"op": "run", "code": FORKED})
            self.assertEqual(r["stdout"], "False\n", r)
        st = c.call({"op": "stats"})
        self.assertEqual(st["template_forks"], 0, st)
        self.assertEqual(self.template_pythons(), [])


if __name__ == "__main__":
    main()
