"""The seccomp filter: the hard-deny core holds under the default profile, each
refusal is reported by name, odd ABIs die, and everyday Python runs clean.
Every probe runs outside the jail first (same caller), so the test shows what
the filter changed, not what the kernel would have refused anyway."""
import os
import pty
import re
import subprocess

from harness import JailTest, main

HERE = os.path.dirname(os.path.abspath(__file__))

# probe -> (errno inside the jail, syscall name the report must carry)
CORE = {
    "ptrace": ("EPERM", "ptrace"),
    "process_vm_readv": ("EPERM", "process_vm_readv"),
    "kcmp": ("EPERM", "kcmp"),
    "pidfd_getfd": ("EPERM", "pidfd_getfd"),
    "keyctl": ("EPERM", "keyctl"),
    "add_key": ("EPERM", "add_key"),
    "bpf": ("EPERM", "bpf"),
    "perf_event_open": ("EPERM", "perf_event_open"),
    "userfaultfd": ("EPERM", "userfaultfd"),
    "io_uring_setup": ("ENOSYS", "io_uring_setup"),
    "unshare": ("EPERM", "unshare"),
    "setns": ("EPERM", "setns"),
    "clone_newuser": ("EPERM", "clone(CLONE_NEWUSER"),
    "mount": ("EPERM", "mount"),
    "umount2": ("EPERM", "umount2"),
    "fsopen": ("EPERM", "fsopen"),
    "open_tree": ("EPERM", "open_tree"),
    "chroot": ("EPERM", "chroot"),
    "pivot_root": ("EPERM", "pivot_root"),
    "init_module": ("EPERM", "init_module"),
    "reboot": ("EPERM", "reboot"),
    "syslog": ("EPERM", "syslog"),
    "adjtimex": ("EPERM", "adjtimex"),
    "clock_settime": ("EPERM", "clock_settime"),
    "personality": ("EPERM", "personality"),
    "socket_vsock": ("EAFNOSUPPORT", "socket(AF_VSOCK"),
    "socket_netlink": ("EAFNOSUPPORT", "socket(AF_NETLINK"),
    "socket_netlink_highbits": ("EAFNOSUPPORT", "socket(AF_NETLINK"),
    "socket_packet": ("EAFNOSUPPORT", "socket(AF_PACKET"),
    "name_to_handle_at": ("EPERM", "name_to_handle_at"),
}
# Outside the jail these succeed for any caller on a stock kernel: proof the
# jail, not the kernel, refused them.
SUCCEED_OUTSIDE = {"ptrace", "kcmp", "pidfd_getfd", "keyctl", "add_key", "io_uring_setup", "unshare",
                   "clone_newuser", "personality", "socket_netlink", "socket_netlink_highbits",
                   "adjtimex", "process_vm_readv"}


class SeccompTest(JailTest):
    def setUp(self):
        super().setUp()
        if not self.try_syscall:
            self.skipTest("STOCKADE_TRY_SYSCALL is not set (run through ctest)")

    def outside(self, probe, **kw):
        # In a fresh user+mount namespace, so the mount-family probes cannot touch the host.
        return self.run_cmd(["unshare", "-Urm", self.try_syscall, probe], **kw)

    def inside(self, *probes, opts=(), **kw):
        return self.stockade("exec", *opts, "--ro", f"{self.try_syscall}:/opt/try-syscall",
                             "--set", 'run.exec_allow=["/opt/*"]', "--", "/opt/try-syscall", *probes, **kw)

    def test_hard_deny_core(self):
        r = self.inside(*CORE, opts=("-v",))
        self.assertEqual(r.returncode, 0, r.stderr)
        got = dict(l.split(" ", 1) for l in r.stdout.splitlines())
        report = r.stderr
        for probe, (err, name) in CORE.items():
            with self.subTest(probe=probe):
                out = self.outside(probe)
                if probe in SUCCEED_OUTSIDE:
                    self.assertIn(f"{probe} ok", out.stdout, f"outside: {out.stdout} {out.stderr}")
                self.assertEqual(got.get(probe), f"err {err}", f"outside the jail: {out.stdout.strip()}")
                self.assertIn(name, report)
        self.assertRegex(report, r"stockade: refused \d+ syscalls: ")

    def test_allowed_forms_still_work(self):
        r = self.inside("clone_plain", "personality_query", "socket_inet", "ioctl_fionread")
        self.assertOk(r)
        for p in ("clone_plain", "personality_query", "socket_inet", "ioctl_fionread"):
            self.assertIn(f"{p} ok", r.stdout)
        self.assertNotIn("refused", r.stderr)

    def test_clone3_is_enosys_so_glibc_falls_back(self):
        self.assertIn("clone3_newuser ok", self.outside("clone3_newuser").stdout)
        r = self.inside("clone3_newuser")
        self.assertIn("clone3_newuser err ENOSYS", r.stdout)

    def tiocsti(self, probe, inside):
        master, slave = pty.openpty()
        try:
            argv = ([self.bin, "exec", "--ro", f"{self.try_syscall}:/opt/try-syscall", "--set",
                     'run.exec_allow=["/opt/*"]', "--", "/opt/try-syscall", probe] if inside
                    else [self.try_syscall, probe])
            return subprocess.run(self.prefix() + argv, stdin=slave, capture_output=True, text=True,
                                  env=self.env(), timeout=60, start_new_session=True)
        finally:
            os.close(master)
            os.close(slave)

    def test_tiocsti_including_high_bits(self):
        for probe in ("tiocsti_stdin", "tiocsti_stdin_highbits"):
            out = self.tiocsti(probe, inside=False)
            self.assertIn(f"{probe} ok", out.stdout, "TIOCSTI should work on one's own terminal outside")
            r = self.tiocsti(probe, inside=True)
            self.assertIn(f"{probe} err EPERM", r.stdout, r.stderr)
            self.assertIn("TIOCSTI", r.stderr)
        self.assertIn("TIOCSTI (high bits set)", r.stderr)

    def test_other_abis_are_killed(self):
        out = self.outside("x32_getpid")
        r = self.inside("x32_getpid")
        self.assertNotEqual(out.returncode, 128 + 31)
        self.assertEqual(r.returncode, 128 + 31, r.stdout + r.stderr)  # SIGSYS
        out = subprocess.run([self.try_syscall, "int80_getpid"], capture_output=True, text=True)
        if out.returncode != 0:
            self.skipTest("int 0x80 is not available on this kernel (ia32 emulation off), nothing to compare")
        r = self.inside("int80_getpid")
        self.assertEqual(r.returncode, 128 + 31, r.stdout + r.stderr)

    def test_python_ptrace_is_reported_by_name(self):
        code = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True)\n"
                "print(libc.ptrace(0, 0, 0, 0), ctypes.get_errno())\n")
        out = self.host_py(code)
        self.assertEqual(out.stdout, "0 0\n")  # PTRACE_TRACEME works outside
        r = self.stockade("run", "-c", code)
        self.assertOk(r)
        self.assertEqual(r.stdout, "-1 1\n")
        self.assertIn("stockade: refused 1 syscall: ptrace(", r.stderr)

    def test_unlisted_syscall_is_enosys(self):
        self.assertIn("set_mempolicy ok", self.outside("set_mempolicy").stdout)
        r = self.inside("set_mempolicy")
        self.assertIn("set_mempolicy err ENOSYS", r.stdout)
        self.assertIn("refused 1 syscall: set_mempolicy(", r.stderr)

    def test_kill_action(self):
        r = self.inside("set_mempolicy", opts=("--set", "seccomp.default_action=kill"))
        self.assertEqual(r.returncode, 128 + 31, r.stdout + r.stderr)
        self.assertNotIn("set_mempolicy", r.stdout)  # it never returned
        self.assertIn("set_mempolicy(", r.stderr)
        self.assertIn("process killed", r.stderr)
        # Kill mode kills for every refusal, the core's included (before, the
        # core kept its errno, and a stacked filter could then pre-empt it).
        r = self.inside("ptrace", opts=("--set", "seccomp.default_action=kill"))
        self.assertEqual(r.returncode, 128 + 31, r.stdout + r.stderr)
        self.assertNotIn("ptrace", r.stdout)
        self.assertIn("ptrace(", r.stderr)

    def test_everyday_python_runs_clean(self):
        # A copy in the workspace: the clone may sit below a directory that
        # uid 65534 cannot enter.
        with open(os.path.join(HERE, "probes", "compat.py")) as f:
            script = self.write("compat.py", f.read())
        # The probe takes about 30 s (and as much CPU) in the software-emulated VM: past the defaults.
        r = self.stockade("run", "--timeout", "5m", "--cpu-time", "5m", script, timeout=400)
        self.assertOk(r)
        self.assertIn("all ok", r.stdout)
        self.assertNotIn("refused", r.stderr)

    def test_learn_writes_a_working_profile(self):
        learned = self.path("learned.toml")
        if self.drop:
            os.chmod(self.ws, 0o777)
        code = "import json, hashlib; print(json.dumps(hashlib.sha1(b'x').hexdigest()[:4]))"
        r = self.stockade("run", "--learn", learned, "-c", code)
        self.assertOk(r)
        self.assertIn("--learn:", r.stderr)
        with open(learned) as f:
            text = f.read()
        self.assertIn('extends = "python"', text)
        self.assertIn('"read"', text)
        self.assertNotIn('"ptrace"', text)
        again = self.stockade("run", "-p", learned, "-c", code)
        self.assertOk(again)
        self.assertEqual(again.stdout, r.stdout)
        self.assertNotIn("refused", again.stderr)
        # ...and nothing beyond what was used: another syscall is now refused.
        other = self.stockade("run", "-p", learned, "-c", code + "; import os; os.getpgid(0)")
        self.assertIn("refused", other.stderr)

    def test_profile_cannot_allow_the_core_without_unsafe(self):
        p = self.write("ptrace.toml", 'schema = 1\nextends = "python"\n[seccomp]\nallow = ["@python", "ptrace"]\n')
        r = self.stockade("check", p)
        self.assertEqual(r.returncode, 125)
        self.assertIn("hard-deny core", r.stderr)
        self.assertIn("[unsafe]", r.stderr)
        u = self.write("unsafe.toml", 'schema = 1\nextends = "python"\n[seccomp]\nallow = ["@python", "ptrace"]\n'
                                      '[unsafe]\nallow_syscalls = ["ptrace"]\n')
        self.assertOk(self.stockade("check", u))
        e = self.stockade("explain", "-p", u)
        self.assertIn("!!! UNSAFE", e.stdout)
        r = self.inside("ptrace", opts=("-p", u))
        self.assertIn("ptrace ok", r.stdout)

    def test_unknown_syscall_names(self):
        p = self.write("typo.toml", 'schema = 1\n[seccomp]\nallow = ["reed", "@pyhton"]\n')
        r = self.stockade("check", p)
        self.assertEqual(r.returncode, 125)
        self.assertIn('unknown syscall "reed"; did you mean "read"?', r.stderr)
        self.assertIn('did you mean "@python"?', r.stderr)
        # A name from another architecture is skipped with a note, not an error.
        q = self.write("arch.toml", 'schema = 1\nextends = "python"\n[seccomp]\nallow = ["@python", "arm_fadvise64_64"]\n')
        self.assertOk(self.stockade("check", q))
        self.assertIn("note: arm_fadvise64_64 is not a syscall on x86_64", self.stockade("explain", "-p", q).stdout)

    def test_explain_shows_the_policy(self):
        r = self.stockade("explain")
        self.assertOk(r)
        self.assertRegex(r.stdout, r"seccomp: +allowlist, x86_64 only .*, \d+ BPF instructions")
        self.assertIn("anything else: fails with ENOSYS", r.stdout)
        self.assertIn("allow @file-io:", r.stdout)
        self.assertRegex(r.stdout, r"ptrace +EPERM")


if __name__ == "__main__":
    main()
