"""Shared helpers for stockade's integration tests.

Every test runs the real binary. STOCKADE_TEST_AS picks the caller:
  root -- stockade runs as root (the jail maps to an unprivileged host uid);
  user -- stockade runs as uid/gid 65534 through setpriv (when the suite runs as
          root), or as whoever runs the suite otherwise.
Each test gets a fresh world-readable workspace under /tmp holding a copy of the
binary, because CI's clone may sit below a directory uid 65534 cannot enter.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("STOCKADE_BIN", "")
AS = os.environ.get("STOCKADE_TEST_AS", "root")
NOBODY = 65534
PY = "/usr/bin/python3"
# The ASan+UBSan build (scripts/test sets ASAN_OPTIONS for it) is several times
# slower and larger: resource-bound assertions about stockade itself hold for
# the release build only.
SANITIZED = "ASAN_OPTIONS" in os.environ


def _check_setup():
    if not BIN or not os.path.exists(BIN):
        raise unittest.SkipTest("STOCKADE_BIN is not set to the stockade binary")
    if AS == "root" and os.geteuid() != 0:
        raise unittest.SkipTest("the root variant needs the suite to run as root")


class JailTest(unittest.TestCase):
    """A test with a private workspace and helpers to run things in and out of the jail."""

    def setUp(self):
        _check_setup()
        self.ws = tempfile.mkdtemp(prefix="stockade-test-", dir="/tmp")
        # Removed even when a subclass's setUp skips or fails after this
        # (unittest runs no tearDown then); cleanups run after tearDown.
        self.addCleanup(shutil.rmtree, self.ws, True)
        os.chmod(self.ws, 0o755)
        self.bin = os.path.join(self.ws, "stockade")
        shutil.copy2(BIN, self.bin)
        os.chmod(self.bin, 0o755)
        self.try_syscall = None
        if os.environ.get("STOCKADE_TRY_SYSCALL"):
            self.try_syscall = os.path.join(self.ws, "try-syscall")
            shutil.copy2(os.environ["STOCKADE_TRY_SYSCALL"], self.try_syscall)
            os.chmod(self.try_syscall, 0o755)
        self.home = self.mkdir("home")
        self.as_user = AS == "user"
        self.drop = self.as_user and os.geteuid() == 0
        # The uid that the jail's files and processes have on the host.
        self.jail_host_uid = NOBODY if (os.geteuid() == 0) else os.geteuid()
        if self.drop:
            for d in (self.ws, self.home):
                os.chown(d, NOBODY, NOBODY)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()

    # ---- workspace -------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.ws, *parts)

    def mkdir(self, name, mode=0o755):
        p = self.path(name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        if self.drop and mode & 0o200 and not name.endswith(".py"):
            os.chown(p, NOBODY, NOBODY)
        return p

    # ---- running ---------------------------------------------------------
    def prefix(self):
        if self.drop:
            drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            cg = os.environ.get("STOCKADE_TEST_CGROUP")
            if cg:
                # A leaf of its own in the delegated cgroup, so stockade finds itself alone there.
                script = ('d="$0/w$$"; mkdir "$d" && chown 65534:65534 "$d" "$d/cgroup.procs" '
                          '"$d/cgroup.subtree_control" "$d/cgroup.threads" && echo $$ > "$d/cgroup.procs" && exec "$@"')
                return ["sh", "-c", script, cg] + drop
            return drop
        return []

    def env(self, extra=None):
        e = {"PATH": "/usr/bin:/bin", "HOME": self.home, "LANG": "C.UTF-8"}
        if extra:
            e.update(extra)
        return e

    def run_cmd(self, argv, input=None, env=None, timeout=60, pass_fds=(), cwd=None):
        return subprocess.run(self.prefix() + argv, input=input, capture_output=True, text=True,
                              env=self.env(env), timeout=timeout, pass_fds=pass_fds, cwd=cwd or self.ws)

    def stockade(self, *args, **kw):
        return self.run_cmd([self.bin, *args], **kw)

    def jail_py(self, code, *args, opts=(), **kw):
        """Runs code as a script file inside the jail."""
        script = self.write(f"probe_{len(os.listdir(self.ws))}.py", code)
        return self.stockade("run", *opts, script, *args, **kw)

    def host_py(self, code, *args, **kw):
        """The same code, same caller identity, no jail: what the test must see fail inside."""
        return self.run_cmd([PY, "-c", code, *args], **kw)

    def spawn_host(self, argv, as_jail_uid=True):
        """A host process owned by the jail's host uid (the one a jail escape would reach)."""
        pre = []
        if os.geteuid() == 0 and as_jail_uid:
            pre = ["setpriv", f"--reuid={self.jail_host_uid}", f"--regid={self.jail_host_uid}", "--clear-groups"]
        p = subprocess.Popen(pre + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def assertOk(self, r, msg=""):
        self.assertEqual(r.returncode, 0, f"{msg}\nstdout: {r.stdout}\nstderr: {r.stderr}")


# Python that leaves a daemon behind: double-forked, in a session of its own,
# its stdio on /dev/null, with argv[1] (a marker to find it by) in its command
# line. Needs os and sys imported.
LEAVE_DAEMON = ("if os.fork() == 0:\n"
                "    os.setsid()\n"
                "    if os.fork() == 0:\n"
                "        fd = os.open(os.devnull, os.O_RDWR)\n"
                "        for i in range(3): os.dup2(fd, i)\n"
                "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]])\n"
                "    os._exit(0)\n")


def host_pids_with_cmdline(needle):
    """PIDs on the host whose command line contains needle."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if needle.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def main():
    unittest.main(verbosity=2)
