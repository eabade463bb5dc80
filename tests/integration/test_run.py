"""Running things: scripts, code strings, exec, exit codes, signals, stdio."""
import os
import signal
import subprocess
import time

from harness import JailTest, main


class RunTest(JailTest):
    def test_hello_script(self):
        s = self.write("hello.py", "import sys\nprint('hello', sys.argv[1:])\n")
        r = self.stockade("run", s, "a", "--b")
        self.assertOk(r)
        self.assertEqual(r.stdout, "hello ['a', '--b']\n")

    def test_code_string(self):
        r = self.stockade("run", "-c", "import sys; print(6 * 7, sys.argv[1:])", "x")
        self.assertOk(r)
        self.assertEqual(r.stdout, "42 ['x']\n")

    def test_script_sees_itself_at_work(self):
        s = self.write("where.py", "import os\nprint(os.path.abspath(__file__), os.getcwd())\n")
        r = self.stockade("run", s)
        self.assertOk(r)
        self.assertEqual(r.stdout.split(), ["/work/where.py", "/work"])

    def test_exec_argv(self):
        r = self.stockade("exec", "--", "/bin/sh", "-c", "echo $0 $1", "zero", "one")
        self.assertOk(r)
        self.assertEqual(r.stdout, "zero one\n")

    def test_exec_path_lookup_and_allowlist(self):
        r = self.stockade("exec", "--", "env")
        self.assertOk(r)
        r = self.stockade("exec", "-p", "strict", "--set", "limits.require_cgroup=false", "--", "/bin/sh", "-c", "true")
        self.assertEqual(r.returncode, 126, r.stderr)
        self.assertIn("not allowed by the profile", r.stderr)

    def test_exit_codes(self):
        self.assertEqual(self.stockade("run", "-c", "raise SystemExit(7)").returncode, 7)
        self.assertEqual(self.stockade("run", "-c", "pass").returncode, 0)
        r = self.stockade("run", "-c", "import os; os.kill(os.getpid(), 9)")
        self.assertEqual(r.returncode, 128 + 9)
        self.assertIn("signal 9", r.stderr)
        r = self.stockade("run", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
        self.assertEqual(r.returncode, 128 + 15)
        r = self.stockade("exec", "--", "no-such-program")
        self.assertEqual(r.returncode, 127)
        self.assertIn("not found", r.stderr)
        r = self.stockade("exec", "--", "/usr/share/doc")  # exists, cannot be executed
        self.assertEqual(r.returncode, 126, r.stderr)
        r = self.stockade("run", self.path("missing.py"))
        self.assertEqual(r.returncode, 125)
        self.assertIn("missing.py: No such file or directory", r.stderr)

    def test_setup_error_is_one_line(self):
        r = self.stockade("run", "--cwd", "/nonexistent", "-c", "pass")
        self.assertEqual(r.returncode, 125)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], r"^stockade: working directory /nonexistent.*No such file or directory")

    def test_sigterm_is_forwarded(self):
        code = ("import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
                "print('ready', flush=True)\n"
                "time.sleep(30)\n")
        s = self.write("term.py", code)
        p = subprocess.Popen(self.prefix() + [self.bin, "run", s], stdout=subprocess.PIPE, text=True, env=self.env())
        self.procs.append(p)
        self.assertEqual(p.stdout.readline(), "ready\n")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 42)

    def test_sigint_reaches_python(self):
        code = ("import time\n"
                "try:\n    print('ready', flush=True); time.sleep(30)\n"
                "except KeyboardInterrupt:\n    print('interrupted', flush=True); raise SystemExit(3)\n")
        s = self.write("int.py", code)
        p = subprocess.Popen(self.prefix() + [self.bin, "run", s], stdout=subprocess.PIPE, text=True, env=self.env())
        self.procs.append(p)
        self.assertEqual(p.stdout.readline(), "ready\n")
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(timeout=10), 3)
        self.assertEqual(p.stdout.read(), "interrupted\n")

    def test_stdin_passes_through(self):
        r = self.stockade("run", "-c", "import sys; print(sys.stdin.read().upper())", input="quiet words")
        self.assertOk(r)
        self.assertEqual(r.stdout, "QUIET WORDS\n")

    def test_env_flags(self):
        r = self.stockade("run", "--env", "GREETING=hi there", "--env-pass", "FROM_CALLER", "-c",
                          "import os; print(os.environ['GREETING'], os.environ['FROM_CALLER'], os.environ['HOME'])",
                          env={"FROM_CALLER": "passed"})
        self.assertOk(r)
        self.assertEqual(r.stdout, "hi there passed /home/sandbox\n")

    def test_hostname_and_identity(self):
        r = self.stockade("run", "-c", "import os, socket, pwd; print(socket.gethostname(), os.getuid(), os.getgid(),"
                                        " pwd.getpwuid(os.getuid()).pw_name, os.getsid(0) == os.getpid())")
        self.assertOk(r)
        self.assertEqual(r.stdout, "stockade 1000 1000 sandbox True\n")

    def test_version_help_profiles(self):
        r = self.stockade("--version")
        self.assertOk(r)
        self.assertRegex(r.stdout, r"^stockade \d+\.\d+\.\d+")
        r = self.stockade("--help")
        self.assertOk(r)
        self.assertIn("Examples:", r.stdout)
        r = self.stockade("profiles")
        self.assertOk(r)
        self.assertIn("python (default)", r.stdout)
        self.assertIn("strict", r.stdout)

    def test_check_builtins_and_explain(self):
        for name in ("python", "strict"):
            r = self.stockade("check", name)
            self.assertOk(r)
        r = self.stockade("explain", "-p", "strict", "--ro", "/usr/share/doc:/docs")
        self.assertOk(r)
        for want in ("network:     none", "/docs", "bind /usr/share/doc (ro,nosuid,nodev)", "PATH=",
                     "every capability dropped", "/proc"):
            self.assertIn(want, r.stdout)

    def test_unknown_flag(self):
        r = self.stockade("run", "--bogus", "x.py")
        self.assertEqual(r.returncode, 125)
        self.assertIn("--bogus", r.stderr)


if __name__ == "__main__":
    main()
