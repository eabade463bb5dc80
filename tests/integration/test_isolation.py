"""What the jail hides and refuses. Each test first shows the probe working
without the jail (same caller, same code), then contained inside it."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

from harness import JailTest, host_pids_with_cmdline, main


class IsolationTest(JailTest):
    def test_host_files_are_invisible(self):
        cwd_canary = self.write("canary.txt", "CWD-CANARY")
        home_canary = os.path.join(self.home, "secret.env")
        with open(home_canary, "w") as f:
            f.write("HOME-CANARY")
        os.chmod(home_canary, 0o644)
        probe = ("import sys\n"
                 "for p in sys.argv[1:]:\n"
                 "    try:\n        print(p, open(p).read())\n"
                 "    except OSError as e:\n        print(p, type(e).__name__)\n")
        outside = self.host_py(probe, cwd_canary, home_canary)
        self.assertIn("CWD-CANARY", outside.stdout)
        self.assertIn("HOME-CANARY", outside.stdout)
        inside = self.jail_py(probe, cwd_canary, home_canary, "/etc/hostname", "/etc/shadow", "/root/.bashrc")
        self.assertOk(inside)
        self.assertNotIn("CANARY", inside.stdout)
        self.assertEqual(inside.stdout.count("FileNotFoundError"), 4, inside.stdout)  # /etc/hostname is the jail's own
        self.assertIn("/etc/hostname stockade", inside.stdout)

    def test_root_listing_is_minimal(self):
        r = self.stockade("run", "-c", "import os; print(sorted(os.listdir('/')), sorted(os.listdir('/etc')),"
                                        " sorted(os.listdir('/dev')))")
        self.assertOk(r)
        # Public host data, bound only where the host has it: services and
        # protocols (python's socket module), Debian's matplotlibrc, and
        # fontconfig's configuration and cache (plots with text).
        top = ["bin", "dev", "etc", "home", "lib", "lib64", "proc", "sbin", "tmp", "usr", "work"]
        etc = ["alternatives", "group", "hostname", "hosts", "ld.so.cache", "passwd", "protocols", "services"]
        if os.path.exists("/var/cache/fontconfig"):
            top.append("var")
        for name in ("fonts", "matplotlibrc"):
            if os.path.exists("/etc/" + name):
                etc.append(name)
        self.assertEqual(r.stdout.strip(), f"{sorted(top)} {sorted(etc)} "
                         "['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'urandom', "
                         "'zero']")

    def test_environment_secrets_absent(self):
        probe = ("import os\n"
                 "print('env', os.environ.get('STOCKADE_TEST_SECRET'))\n"
                 "for p in ('/proc/self/environ', '/proc/1/environ', '/proc/1/cmdline'):\n"
                 "    try:\n        data = open(p, 'rb').read()\n"
                 "    except OSError as e:\n        data = type(e).__name__.encode()\n"
                 "    print(p, b'hunter2' in data, data.replace(b'\\0', b'').decode(errors='replace')[:40])\n")
        secret = {"STOCKADE_TEST_SECRET": "hunter2"}
        outside = self.host_py(probe, env=secret)
        self.assertIn("env hunter2", outside.stdout)
        inside = self.jail_py(probe, env=secret)
        self.assertOk(inside)
        self.assertIn("env None", inside.stdout)
        self.assertNotIn("True", inside.stdout)
        self.assertNotIn("hunter2", inside.stdout)

    def test_inherited_fd_does_not_reach_program(self):
        secret = self.write("fd-secret.txt", "FD-SECRET")
        fd = os.open(secret, os.O_RDONLY)
        os.set_inheritable(fd, True)
        try:
            probe = ("import os, sys\nfd = int(sys.argv[1])\n"
                     "try:\n    print(os.read(fd, 100))\nexcept OSError as e:\n    print('closed', e.errno)\n"
                     "print(sorted(int(x) for x in os.listdir('/proc/self/fd')))\n")
            outside = self.host_py(probe, str(fd), pass_fds=(fd,))
            self.assertIn("FD-SECRET", outside.stdout)
            inside = self.jail_py(probe, str(fd), pass_fds=(fd,))
            self.assertOk(inside)
            self.assertIn("closed 9", inside.stdout)  # EBADF
            self.assertIn("[0, 1, 2, 3]", inside.stdout)  # stdio plus listdir's own fd
        finally:
            os.close(fd)

    def test_network_only_lo_and_host_listener_unreachable(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        accepted = []
        t = threading.Thread(target=lambda: accepted.append(srv.accept()[0]), daemon=True)
        t.start()
        # /proc/self/net/dev rather than if_nameindex(): that uses netlink, which
        # the jail's seccomp filter refuses.
        probe = ("import socket, sys\n"
                 "print('ifaces', [l.split(':')[0].strip() for l in open('/proc/self/net/dev').readlines()[2:]])\n"
                 "try:\n    s = socket.socket(); s.settimeout(3)\n"
                 "    s.connect(('127.0.0.1', int(sys.argv[1]))); print('connected')\n"
                 "except OSError as e:\n    print('refused', type(e).__name__)\n")
        try:
            outside = self.host_py(probe, str(port))
            self.assertIn("connected", outside.stdout)
            inside = self.jail_py(probe, str(port))
            self.assertOk(inside)
            self.assertIn("ifaces ['lo']", inside.stdout)
            self.assertIn("refused ConnectionRefusedError", inside.stdout)
            none = self.jail_py(probe, str(port), opts=("--set", "network.mode=none"))
            self.assertIn("ifaces ['lo']", none.stdout)
            self.assertIn("refused", none.stdout)
        finally:
            for c in accepted:
                c.close()
            srv.close()

    def test_loopback_works_inside(self):
        probe = ("import socket\n"
                 "a = socket.socket(); a.bind(('127.0.0.1', 0)); a.listen(1)\n"
                 "b = socket.create_connection(a.getsockname()); c, _ = a.accept()\n"
                 "b.sendall(b'ping'); print(c.recv(4).decode())\n")
        self.assertEqual(self.jail_py(probe).stdout, "ping\n")
        r = self.jail_py(probe, opts=("--set", "network.mode=none"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("OSError", r.stderr)

    def test_host_pids_invisible_and_kill_all_contained(self):
        victim = self.spawn_host(["sleep", "60"])
        probe = ("import os, signal, sys\n"
                 "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
                 "print('pids', pids, 'visible', os.path.exists('/proc/' + sys.argv[1]))\n"
                 "try:\n    os.kill(int(sys.argv[1]), 0); print('signalable')\n"
                 "except OSError as e:\n    print('no-such', e.errno)\n"
                 "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError as e:\n    print('kill -1', e.errno)\n"
                 "print('survived')\n")
        # Outside, the same host uid can see and signal the victim.
        as_jail = ([] if self.drop or os.geteuid() != 0 else
                   ["setpriv", f"--reuid={self.jail_host_uid}", f"--regid={self.jail_host_uid}", "--clear-groups"])
        outside = self.run_cmd(as_jail + ["/usr/bin/python3", "-c",
                                          "import os,sys; os.kill(int(sys.argv[1]), 0); print('signalable')",
                                          str(victim.pid)])
        self.assertIn("signalable", outside.stdout)
        inside = self.jail_py(probe, str(victim.pid))
        self.assertIn("pids [1, 2]", inside.stdout)
        self.assertIn("no-such 3", inside.stdout)  # ESRCH
        self.assertOk(inside)
        self.assertIn("survived", inside.stdout)  # kill(-1) spares the caller and the jail's init
        time.sleep(0.2)
        self.assertIsNone(victim.poll(), "a host process died from a kill(-1) inside the jail")

    def test_usr_and_root_are_read_only(self):
        probe = ("import os\n"
                 "for p in ('/usr/stockade-probe', '/stockade-probe', '/etc/passwd', '/work/x', '/dev/x'):\n"
                 "    try:\n        open(p, 'a').write('x'); print(p, 'WRITTEN')\n"
                 "    except OSError as e:\n        print(p, e.errno)\n"
                 "open('/tmp/ok', 'w').write('x'); open(os.environ['HOME'] + '/ok', 'w').write('x'); print('scratch ok')\n")
        r = self.jail_py(probe)
        self.assertOk(r)
        self.assertNotIn("WRITTEN", r.stdout)
        self.assertEqual(r.stdout.count(" 30\n"), 5, r.stdout)  # EROFS
        self.assertIn("scratch ok", r.stdout)
        self.assertFalse(os.path.exists("/usr/stockade-probe"))

    def test_double_forked_daemon_does_not_survive(self):
        marker = f"stockade-daemon-{os.getpid()}-{time.time_ns()}"
        out = self.mkdir("out", 0o777)
        probe = ("import os, sys, time\n"
                 "if os.fork() == 0:\n"
                 "    os.setsid()\n"
                 "    if os.fork() == 0:\n"
                 "        null = os.open('/dev/null', os.O_RDWR)\n"
                 "        for fd in (0, 1, 2): os.dup2(null, fd)\n"
                 "        time.sleep(1.0)\n"
                 "        open('/out/alive', 'w').write('still here')\n"
                 "        os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(30)', sys.argv[1]])\n"
                 "    os._exit(0)\n"
                 "os.wait()\nprint('parent done')\n")
        # Outside the jail the daemon would outlive its parent: check the probe itself.
        outside = self.host_py(probe.replace("/out/", out + "/"), marker + "-outside")
        self.assertOk(outside)
        alive = os.path.join(out, "alive")
        deadline = time.time() + 10
        while not os.path.exists(alive) and time.time() < deadline:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(alive), "the probe's daemon did not run on outside the jail")
        outside_pids = host_pids_with_cmdline(marker + "-outside")
        self.assertTrue(outside_pids, "the probe's daemon did not start outside the jail")
        for pid in outside_pids:
            os.kill(pid, signal.SIGKILL)
        os.unlink(os.path.join(out, "alive"))

        r = self.jail_py(probe, marker, opts=("--rw", f"{out}:/out"))
        self.assertOk(r)
        time.sleep(1.5)
        self.assertEqual(host_pids_with_cmdline(marker), [])
        self.assertFalse(os.path.exists(os.path.join(out, "alive")), "the daemon ran on after the jail ended")

    def test_orphans_are_reaped(self):
        probe = ("import os, time\n"
                 "r, w = os.pipe()\n"
                 "a = os.fork()\n"
                 "if a == 0:\n"
                 "    b = os.fork()\n"
                 "    if b == 0:\n        time.sleep(0.2); os._exit(0)\n"
                 "    os.write(w, str(b).encode()); os._exit(0)\n"
                 "os.waitpid(a, 0); b = int(os.read(r, 20))\n"
                 "time.sleep(0.8)\n"
                 "print('orphan reaped' if not os.path.exists(f'/proc/{b}') else 'zombie left')\n")
        r = self.jail_py(probe)
        self.assertOk(r)
        self.assertEqual(r.stdout, "orphan reaped\n")

    def test_no_capabilities_and_no_new_privs(self):
        probe = ("f = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
                 "print(f['CapInh'], f['CapPrm'], f['CapEff'], f['CapBnd'], f['CapAmb'], f['NoNewPrivs'])\n")
        r = self.jail_py(probe)
        self.assertOk(r)
        self.assertEqual(r.stdout.split(), ["0000000000000000"] * 5 + ["1"])

    def test_init_cannot_be_read_traced_or_killed(self):
        probe = ("import ctypes, os, signal\n"
                 "libc = ctypes.CDLL(None, use_errno=True)\n"
                 "rc = libc.ptrace(16, 1, 0, 0)\n"  # PTRACE_ATTACH
                 "print('ptrace', rc, ctypes.get_errno())\n"
                 "for p in ('/proc/1/mem', '/proc/1/environ', '/proc/1/maps'):\n"
                 "    try:\n        print(p, len(open(p, 'rb').read()))\n"
                 "    except OSError as e:\n        print(p, type(e).__name__)\n"
                 "os.kill(1, signal.SIGKILL)\n"
                 "print('init still there', os.path.exists('/proc/1'))\n")
        r = self.jail_py(probe)
        self.assertOk(r)
        self.assertIn("ptrace -1 1", r.stdout)  # EPERM
        self.assertIn("/proc/1/mem PermissionError", r.stdout)
        self.assertIn("/proc/1/environ PermissionError", r.stdout)
        self.assertIn("init still there True", r.stdout)

    def test_jail_uid_on_host(self):
        out = self.mkdir("owned", 0o777)
        r = self.stockade("run", "--rw", f"{out}:/out", "-c", "open('/out/f', 'w').write('x')")
        self.assertOk(r)
        st = os.stat(os.path.join(out, "f"))
        self.assertEqual(st.st_uid, self.jail_host_uid)
        self.assertNotEqual(st.st_uid, 0)

    def test_tmpfs_is_size_limited(self):
        probe = ("import errno\n"
                 "try:\n    open('/tmp/fill', 'wb').write(b'x' * (3 << 20)); print('wrote')\n"
                 "except OSError as e:\n    print('full', errno.errorcode[e.errno])\n")
        r = self.jail_py(probe, opts=("--set", "filesystem.tmp_size=1M"))
        self.assertOk(r)
        self.assertEqual(r.stdout, "full ENOSPC\n")

    def test_python_level_escapes_find_nothing(self):
        canary = self.write("escape-canary.txt", "ESCAPE-CANARY")
        probe = ("import sys\n"
                 "os1 = [c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == '_wrap_close'][0]"
                 ".__init__.__globals__['sys'].modules['os']\n"
                 "try:\n    raise Exception\n"
                 "except Exception as e:\n    os2 = e.__traceback__.tb_frame.f_globals['__builtins__'].__import__('os')\n"
                 "print('reached os', os1.name, os2 is os1)\n"
                 "print('root', sorted(os1.listdir('/')))\n"
                 "for p in (sys.argv[1], '/etc/shadow', '/root'):\n"
                 "    print(p, os1.path.exists(p))\n"
                 "print('popen', os2.popen('cat ' + sys.argv[1] + ' 2>&1; id -u').read().strip().splitlines())\n")
        outside = self.host_py(probe, canary)
        self.assertIn(f"{canary} True", outside.stdout)
        inside = self.jail_py(probe, canary)
        self.assertOk(inside)
        self.assertIn("reached os posix True", inside.stdout)
        self.assertIn(f"{canary} False", inside.stdout)
        self.assertIn("/etc/shadow False", inside.stdout)
        self.assertNotIn("ESCAPE-CANARY", inside.stdout)
        self.assertIn("No such file or directory", inside.stdout)


if __name__ == "__main__":
    main()
