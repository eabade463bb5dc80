"""Bad profiles and flags: one clear line (file:line:col, key, what was expected),
exit 125, and nothing started."""
import json
import os

from harness import JailTest, main


class ProfileErrorTest(JailTest):
    def profile(self, name, text):
        return self.write(name, text)

    def expect_error(self, args, *needles):
        r = self.stockade(*args)
        self.assertEqual(r.returncode, 125, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        for n in needles:
            self.assertIn(n, r.stderr)
        return r

    def test_unknown_key_with_suggestion(self):
        p = self.profile("typo.toml", 'schema = 1\nextends = "python"\n\n[filesystem]\ntmp_sise = "1M"\n')
        r = self.expect_error(["run", "-p", p, "-c", "pass"],
                              f"{p}:5:12: filesystem.tmp_sise: unknown key; did you mean 'tmp_size'?")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_bad_size(self):
        p = self.profile("size.toml", 'schema = 1\n[filesystem]\ntmp_size = "512X"\n')
        self.expect_error(["run", "-p", p, "-c", "pass"], f"{p}:3:12: filesystem.tmp_size: expected a size like")

    def test_wrong_type(self):
        p = self.profile("type.toml", 'schema = 1\n[user]\nuid = "1000"\n')
        self.expect_error(["run", "-p", p, "-c", "pass"], f"{p}:3:7: user.uid: expected an integer id, got a string")

    def test_relative_path(self):
        p = self.profile("rel.toml", 'schema = 1\n[filesystem]\nro = ["usr"]\n')
        self.expect_error(["run", "-p", p, "-c", "pass"], f"{p}:3:7: filesystem.ro[0]: source: expected an absolute path")

    def test_out_of_range(self):
        p = self.profile("range.toml", 'schema = 1\n[user]\nuid = 0\n')
        self.expect_error(["run", "-p", p, "-c", "pass"], "user.uid: expected an id from 1 to 4294967294, got 0")

    def test_bad_enum_value(self):
        p = self.profile("enum.toml", 'schema = 1\n[network]\nmode = "loopbak"\n')
        self.expect_error(["run", "-p", p, "-c", "pass"], 'did you mean "loopback"?')

    def test_toml_syntax(self):
        p = self.profile("syntax.toml", 'schema = 1\n[run\n')
        self.expect_error(["run", "-p", p, "-c", "pass"], f"{p}:2:", "TOML syntax")

    def test_missing_schema(self):
        p = self.profile("noschema.toml", '[run]\ncwd = "/work"\n')
        self.expect_error(["check", p], "schema: missing")

    def test_unknown_builtin(self):
        self.expect_error(["run", "-p", "pyhton", "-c", "pass"], "unknown profile 'pyhton'; did you mean 'python'?")

    def test_extends_cycle(self):
        a = self.profile("a.toml", 'schema = 1\nextends = "b.toml"\n')
        self.profile("b.toml", 'schema = 1\nextends = "a.toml"\n')
        self.expect_error(["check", a], "extends cycle")

    def test_check_prints_every_error(self):
        p = self.profile("many.toml", 'schema = 1\n[run]\ncwd = "rel"\nhostnme = "x"\n[filesystem]\nshm_size = -1\n')
        r = self.expect_error(["check", p])
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 3, r.stderr)

    def test_set_errors_name_the_flag(self):
        self.expect_error(["run", "--set", "filesystem.tmp_size=lots", "-c", "pass"],
                          "--set: filesystem.tmp_size: expected a size")
        self.expect_error(["run", "--set", "nosuch.key=1", "-c", "pass"], "unknown key")
        self.expect_error(["run", "--set", "novalue", "-c", "pass"], "expected KEY=VALUE")

    def test_bad_flags(self):
        self.expect_error(["run", "--ro", "/usr:relative", "-c", "pass"], "--ro: /usr:relative: destination: expected an absolute path")
        # A relative source is the caller's own path, and a missing one is named in full.
        self.expect_error(["run", "--ro", "relative:/x", "-c", "pass"], f"--ro: bind source {self.ws}/relative: No such file")
        self.expect_error(["run", "--env", "1BAD=x", "-c", "pass"], "--env")
        self.expect_error(["run", "--cwd", "rel", "-c", "pass"], "--cwd")

    def test_extends_and_set_apply(self):
        p = self.profile("child.toml", 'schema = 1\nextends = "strict"\n[run]\nhostname = "child"\n')
        r = self.stockade("run", "-p", p, "--set", "filesystem.tmp_size=2M", "--set", "limits.require_cgroup=false", "-c",
                          "import socket, os; s = os.statvfs('/tmp'); print(socket.gethostname(), s.f_blocks * s.f_frsize)")
        self.assertOk(r)
        self.assertEqual(r.stdout, f"child {2 << 20}\n")

    def test_a_profile_without_extends_gets_the_safe_defaults(self):
        # What a bare profile's program sees: its rlimits, an unlisted syscall
        # (ENOSYS, the allowlist's answer) and the core's (EPERM). Without the
        # schema's defaults underneath it had no limits and no allowlist.
        probe = ("import ctypes, os, resource\n"
                 "libc = ctypes.CDLL(None, use_errno=True)\n"
                 "def err(nr):\n"
                 "    libc.syscall(nr, 0, 0, 0)\n"
                 "    return ctypes.get_errno()\n"
                 "print(resource.getrlimit(resource.RLIMIT_CPU)[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0],\n"
                 "      resource.getrlimit(resource.RLIMIT_FSIZE)[0], err(238), err(101))\n")
        # The same probe with the limits lifted shows what it would see unbounded.
        lifted = self.profile("lifted.toml", 'schema = 1\n[limits]\ncpu_time = 0\nfile_size = 0\nopen_files = 0\n')
        r = self.stockade("run", "-p", lifted, "-c", probe)
        self.assertOk(r)
        cpu, _, fsize, _, _ = r.stdout.split()
        self.assertEqual((cpu, fsize), ("-1", "-1"))
        bare = self.profile("bare.toml", "schema = 1\n")
        r = self.stockade("run", "-p", bare, "--result", self.path("bare.json"), "-c", probe)
        self.assertOk(r)
        # set_mempolicy (238) is not in @python: ENOSYS; ptrace (101) is the core's: EPERM.
        self.assertEqual(r.stdout.split(), ["30", "1024", str(128 << 20), "38", "1"])
        with open(self.path("bare.json")) as f:
            res = json.load(f)
        python = self.stockade("run", "--result", self.path("python.json"), "-c", probe)
        self.assertOk(python)
        with open(self.path("python.json")) as f:
            self.assertEqual(res["profile"]["hash"], json.load(f)["profile"]["hash"])

    def test_shipped_profiles_check(self):
        here = os.path.dirname(os.path.abspath(__file__))
        profiles = os.path.join(here, "..", "..", "profiles")
        for name in sorted(os.listdir(profiles)):
            r = self.run_cmd([self.bin, "check", os.path.join(profiles, name)]) if not self.drop else \
                self.stockade("check", name[:-5])
            self.assertOk(r, name)

    def test_explain_keys_come_from_the_schema(self):
        r = self.stockade("explain", "--keys")
        self.assertOk(r)
        for line in ("[limits]", "  memory ", "flag --memory", "[network]", "  nameservers ", "[unsafe]",
                     "  root_host_ids "):
            self.assertIn(line, r.stdout)
        # Every limit flag run accepts is listed against its key.
        help_text = self.stockade("run", "--help").stdout
        for flag in ("--timeout", "--cpu-time", "--memory", "--pids", "--cpus", "--output-limit"):
            self.assertIn(flag, help_text)
            self.assertIn(f"flag {flag}", r.stdout)


if __name__ == "__main__":
    main()
