"""What the program can do to the host from inside, beyond the namespaces:
start programs the profile does not allow, run code from memory, exhaust a
quota it shares with its creator, learn the supervisor's pid. Each attack is
shown working without the jail first."""
import json
import os
import subprocess

from harness import JailTest, main

EXEC = ("import os, subprocess, sys\n"
        "def attempt(argv, **kw):\n"
        "    try:\n"
        "        r = subprocess.run(argv, capture_output=True, text=True, **kw)\n"
        "        return 'ran ' + r.stdout.strip()\n"
        "    except OSError as e:\n"
        "        return f'refused {e.errno}'\n"
        "print('sh', attempt(['/bin/sh', '-c', 'echo from-sh']))\n"
        "print('python', attempt([sys.executable, '-c', 'print(7)']))\n"
        "try:\n"
        "    fd = os.memfd_create('x', 0)\n"
        "except OSError as e:\n"
        "    print('memfd_create refused', e.errno); raise SystemExit(0)\n"
        "os.write(fd, open('/usr/bin/echo', 'rb').read())\n"
        "try:\n"
        "    os.fchmod(fd, 0o755)\n"
        "except OSError:\n"
        "    pass\n"
        "print('memfd', attempt([f'/proc/self/fd/{fd}', 'from-memfd'], pass_fds=(fd,)))\n"
        "try:\n"
        "    os.memfd_create('y', 0x10)  # MFD_EXEC\n"
        "    print('mfd_exec allowed')\n"
        "except OSError as e:\n"
        "    print('mfd_exec refused', e.errno)\n")


def kernel_has_memfd_noexec():
    return os.path.exists("/proc/sys/vm/memfd_noexec")


class ExecTest(JailTest):
    def test_strict_starts_only_python(self):
        out = self.host_py(EXEC)
        self.assertIn("sh ran from-sh", out.stdout)
        self.assertIn("memfd ran from-memfd", out.stdout)
        # Unprivileged here means no cgroup, which strict otherwise refuses to run without.
        r = self.jail_py(EXEC, opts=("-p", "strict", "--set", "limits.require_cgroup=false"))
        self.assertOk(r)
        self.assertIn("sh refused 13", r.stdout)
        self.assertIn("python ran 7", r.stdout)
        # strict makes no memory files at all (ld.so could map one: see test_hostile_service).
        self.assertIn("memfd_create refused 1", r.stdout)

    def test_default_profile_execs_from_usr_only(self):
        r = self.jail_py(EXEC)
        self.assertOk(r)
        self.assertIn("sh ran from-sh", r.stdout)  # /bin/* is in the default exec_allow
        self.assertIn("python ran 7", r.stdout)
        if kernel_has_memfd_noexec():
            self.assertIn("memfd refused 13", r.stdout)

    def test_exec_allow_holds_for_every_exec(self):
        # `stockade exec` checks its first program; later ones are checked too.
        code = "import subprocess; subprocess.run(['/bin/sh', '-c', 'echo second'])"
        r = self.stockade("exec", "--set", 'run.exec_allow=["/usr/bin/python3*"]', "--", "/usr/bin/python3", "-c", code)
        self.assertNotIn("second", r.stdout)
        self.assertIn("PermissionError", r.stderr)


    def test_exec_rules_leave_renames_alone(self):
        # A Landlock ruleset that did not handle REFER would forbid moving or
        # linking files between directories (EXDEV): shutil.move, pip, rename.
        code = ("import os, shutil\n"
                "os.makedirs('/tmp/a'); os.makedirs('/tmp/b'); open('/tmp/a/f', 'w').write('x')\n"
                "os.rename('/tmp/a/f', '/tmp/b/f'); os.link('/tmp/b/f', '/tmp/a/g')\n"
                "shutil.move('/tmp/a/g', '/tmp/b/g')\n"
                "print(sorted(os.listdir('/tmp/b')))\n")
        for opts in ((), ("-p", "strict", "--set", "limits.require_cgroup=false")):
            r = self.stockade("run", *opts, "-c", code)
            self.assertOk(r)
            self.assertEqual(r.stdout, "['f', 'g']\n")


class QuotaTest(JailTest):
    COUNT = ("import ctypes\n"
             "libc = ctypes.CDLL(None, use_errno=True)\n"
             "n = 0\n"
             "while n < 100000 and libc.inotify_init1(0) >= 0:\n"
             "    n += 1\n"
             "print(n, ctypes.get_errno())\n")

    def test_inotify_quota_is_the_jails_own(self):
        with open("/proc/sys/fs/inotify/max_user_instances") as f:
            host_limit = int(f.read())
        # Unprotected: a user namespace of our own takes what is left of the
        # creator's host-wide quota.
        out = self.run_cmd(["unshare", "-U", "python3", "-c", self.COUNT])
        taken_outside = int(out.stdout.split()[0])
        self.assertGreater(taken_outside, host_limit // 8, out.stdout + out.stderr)
        r = self.stockade("run", "-c", self.COUNT)
        self.assertOk(r)
        n, err = map(int, r.stdout.split())
        self.assertLessEqual(n, max(1, host_limit // 8))
        self.assertEqual(err, 24)  # EMFILE


class LeakTest(JailTest):
    def test_cgroup_path_shows_nothing_of_the_host(self):
        r = self.stockade("run", "-c", "print(open('/proc/self/cgroup').read())")
        self.assertOk(r)
        for line in r.stdout.strip().splitlines():
            self.assertTrue(line.endswith(":/"), f"cgroup line shows a host path: {line}")
        self.assertNotIn("stockade-", r.stdout)


class IdentityTest(JailTest):
    def test_root_host_gid_cannot_name_a_privileged_group(self):
        shadow = "/etc/shadow"
        st = os.stat(shadow)
        if st.st_gid == 0 or not st.st_mode & 0o040:
            self.skipTest("/etc/shadow is not group-readable here")
        if os.geteuid() == 0:
            # Unprotected: a process with that gid reads the host's password hashes.
            out = subprocess.run(["setpriv", "--reuid=65534", f"--regid={st.st_gid}", "--clear-groups", "head", "-c1",
                                  shadow], capture_output=True)
            self.assertEqual(out.returncode, 0, out.stderr)
        prof = self.write("gid.toml", f'schema = 1\nextends = "python"\n[user]\nroot_host_gid = {st.st_gid}\n')
        r = self.stockade("run", "-p", prof, "-c", f"print(open('{shadow}').read())")
        self.assertEqual(r.returncode, 125, r.stdout)
        self.assertRegex(r.stderr, r"gid\.toml:4:\d+: user\.root_host_gid: expected 65534 or an id of 100000")
        self.assertEqual(r.stderr.count("\n"), 1)
        r = self.stockade("explain", "-p", prof, "--set", "unsafe.root_host_ids=true")
        self.assertOk(r)
        self.assertIn("UNSAFE: [unsafe] root_host_ids", r.stdout)


class HostileProfileTest(JailTest):
    def check_fails_cleanly(self, prof, needle, timeout=20):
        r = self.stockade("run", "-p", prof, "-c", "print('ran')", timeout=timeout)
        self.assertEqual(r.returncode, 125, r.stdout + r.stderr)
        self.assertNotIn("ran", r.stdout)
        self.assertIn(needle, r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        return r

    def test_extends_an_endless_file(self):
        for target in ("/dev/zero", "/dev/urandom"):
            prof = self.write("endless.toml", f'schema = 1\nextends = "{target}"\n')
            self.check_fails_cleanly(prof, "expected a regular file")

    def test_extends_a_fifo(self):
        fifo = self.path("fifo.toml")
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)
        prof = self.write("fifo-parent.toml", f'schema = 1\nextends = "{fifo}"\n')
        self.check_fails_cleanly(prof, "expected a regular file")

    def test_large_profile(self):
        prof = self.write("big.toml", "schema = 1\n" + "# padding\n" * 200000)
        self.check_fails_cleanly(prof, "larger than 1 MiB")

    def test_deep_nesting_is_refused_before_parsing(self):
        cases = {
            "header": "schema = 1\n[" + "a." * 300000 + "b]\n",
            "arrays": "schema = 1\nx = " + "[" * 100000 + "]" * 100000 + "\n",
            "inline": "schema = 1\nx = " + "{a = " * 50000 + "1" + "}" * 50000 + "\n",
            "dotted": "schema = 1\n" + "a." * 100000 + "b = 1\n",
        }
        for name, text in cases.items():
            with self.subTest(name=name):
                prof = self.write(f"{name}.toml", text[: 1 << 20])
                r = self.check_fails_cleanly(prof, "nested deeper than")
                self.assertRegex(r.stderr, rf"{name}\.toml:\d+:\d+: ")

    def test_deep_pair_joined_by_extends(self):
        a = self.path("a.toml")
        b = self.write("b.toml", f'schema = 1\nextends = "{a}"\n[' + "x." * 100000 + "y]\n")
        self.write("a.toml", f'schema = 1\nextends = "{b}"\n[' + "x." * 100000 + "y]\n")
        self.check_fails_cleanly(a, "nested deeper than")

    def test_shallow_real_profiles_still_load(self):
        for name in ("python", "strict"):
            r = self.stockade("check", name)
            self.assertOk(r)


if __name__ == "__main__":
    main()
