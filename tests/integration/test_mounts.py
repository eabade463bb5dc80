"""Bind mounts from the command line and profiles: what appears, read-only vs
writable, and the paths stockade refuses (symlinks, unreadable sources)."""
import os

from harness import JailTest, main


class MountTest(JailTest):
    def test_ro_and_rw_binds(self):
        data = self.mkdir("data")
        self.write("data/in.txt", "input")
        out = self.mkdir("out", 0o777)
        probe = ("print(open('/data/in.txt').read())\n"
                 "try:\n    open('/data/new', 'w')\nexcept OSError as e:\n    print('ro', e.errno)\n"
                 "open('/home/sandbox/out/result.txt', 'w').write('result')\n")
        r = self.jail_py(probe, opts=("--ro", f"{data}:/data", "--rw", f"{out}:/home/sandbox/out"))
        self.assertOk(r)
        self.assertEqual(r.stdout, "input\nro 30\n")
        with open(os.path.join(out, "result.txt")) as f:
            self.assertEqual(f.read(), "result")

    def test_rw_bind_is_noexec_by_default(self):
        out = self.mkdir("bin", 0o777)
        r = self.stockade("run", "--rw", f"{out}:/scratch", "-c",
                          "import os, shutil, subprocess\n"
                          "shutil.copy('/bin/true', '/scratch/t'); os.chmod('/scratch/t', 0o755)\n"
                          "try:\n    subprocess.run(['/scratch/t']); print('ran')\n"
                          "except PermissionError:\n    print('noexec')\n")
        self.assertOk(r)
        self.assertEqual(r.stdout, "noexec\n")

    def test_same_path_default(self):
        data = self.mkdir("same")
        self.write("same/f", "x")
        r = self.stockade("run", "--ro", data, "-c", f"print(open('{data}/f').read())")
        self.assertOk(r)
        self.assertEqual(r.stdout, "x\n")

    def test_relative_sources_resolve_against_the_callers_directory(self):
        proj = self.mkdir("proj")
        self.write("proj/data.csv", "a,1\n")
        self.mkdir("proj/sub")
        self.write("proj/sub/x.txt", "x")
        code = ("print(open('data.csv').read().strip(), open('/data/sub/x.txt').read(), open('/work/sub/x.txt').read(),"
                " open('/work/data.csv').read().strip())")
        # --ro data.csv lands next to the script, at /work/data.csv; ./sub:/data/sub keeps its destination.
        r = self.stockade("run", "--ro", "data.csv", "--ro", "./sub:/data/sub", "--ro", "sub", "-c", code, cwd=proj)
        self.assertOk(r)
        self.assertEqual(r.stdout, "a,1 x x a,1\n")
        r = self.stockade("run", "--ro", "missing.csv", "-c", "pass", cwd=proj)
        self.assertEqual(r.returncode, 125)
        self.assertIn(os.path.join(proj, "missing.csv"), r.stderr)

    def test_symlinked_target_is_refused(self):
        # --rw brings in a directory holding a symlink; a later mount aimed through
        # it must not follow it (to /etc here, or anywhere else).
        outer = self.mkdir("outer", 0o755)
        os.symlink("/etc", os.path.join(outer, "sub"))
        inner = self.mkdir("inner")
        r = self.stockade("run", "--ro", f"{outer}:/data", "--ro", f"{inner}:/data/sub", "-c", "print('ran')")
        self.assertEqual(r.returncode, 125, r.stdout + r.stderr)
        self.assertIn("symlink", r.stderr)
        self.assertNotIn("ran", r.stdout)
        # Absolute-symlink variant aimed at a path the jail's root would resolve.
        os.symlink("/usr/bin", os.path.join(outer, "abs"))
        r = self.stockade("run", "--ro", f"{outer}:/data", "--ro", f"{inner}:/data/abs/x", "-c", "print('ran')")
        self.assertEqual(r.returncode, 125)
        self.assertIn("symlink", r.stderr)

    def test_symlinked_source_is_refused(self):
        real = self.mkdir("real")
        link = self.path("link")
        os.symlink(real, link)
        r = self.stockade("run", "--ro", f"{link}:/data", "-c", "pass")
        self.assertEqual(r.returncode, 125)
        self.assertIn("is a symlink", r.stderr)
        self.assertIn("--ro", r.stderr)

    def test_missing_source(self):
        r = self.stockade("run", "--ro", self.path("nope") + ":/data", "-c", "pass")
        self.assertEqual(r.returncode, 125)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        self.assertIn("nope: No such file or directory", r.stderr)

    def test_no_paths_created_inside_host_binds(self):
        data = self.mkdir("hostdir", 0o777)
        inner = self.mkdir("inner2")
        r = self.stockade("run", "--rw", f"{data}:/data", "--ro", f"{inner}:/data/newdir", "-c", "pass")
        self.assertEqual(r.returncode, 125)
        self.assertIn("does not create paths on the host", r.stderr)
        self.assertEqual(os.listdir(data), [])

    def test_reserved_destinations(self):
        r = self.stockade("run", "--ro", "/usr:/proc/x", "-c", "pass")
        self.assertEqual(r.returncode, 125)
        self.assertIn("/proc is built by stockade", r.stderr)

    def test_unreadable_source_is_a_clear_error(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a directory the jail's user cannot read")
        secret = self.mkdir("private", 0o700)  # owned by root
        if self.drop:
            # The caller (uid 65534) cannot even open it: an ordinary permission error.
            r = self.stockade("run", "--ro", f"{secret}:/data", "-c", "pass")
            self.assertEqual(r.returncode, 125)
            self.assertIn("Permission denied", r.stderr)
            return
        r = self.stockade("run", "--ro", f"{secret}:/data", "-c", "pass")
        self.assertEqual(r.returncode, 125)
        self.assertIn("not readable by the jail's user (host uid 65534)", r.stderr)

    def test_root_private_script_runs(self):
        if os.geteuid() != 0 or self.drop:
            self.skipTest("the root caller's case")
        private = self.mkdir("rootonly", 0o700)
        script = os.path.join(private, "job.py")
        with open(script, "w") as f:
            f.write("import os; print('ran as', os.getuid(), oct(os.stat(__file__).st_mode & 0o777))\n")
        os.chmod(script, 0o600)
        r = self.stockade("run", script)
        self.assertOk(r)
        self.assertEqual(r.stdout, "ran as 1000 0o444\n")

    def test_script_is_a_snapshot_not_a_bind(self):
        s = self.write("snap.py", "import os\nprint(sorted(os.listdir('/work')))\n"
                                  "try:\n    open(__file__, 'a')\nexcept OSError as e:\n    print('ro', e.errno in (13, 30))\n")
        self.write("sibling.txt", "do not show")
        r = self.stockade("run", s)
        self.assertOk(r)
        self.assertEqual(r.stdout, "['snap.py']\nro True\n")

    def test_a_plot_with_text_saves_under_the_default_profile(self):
        if not os.path.exists("/usr/lib/python3/dist-packages/matplotlib"):
            self.skipTest("python3-matplotlib is not installed (scripts/setup --test installs it)")
        plot = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                "fig, ax = plt.subplots(); ax.plot([1, 2, 3], [1, 4, 9], label='squares')\n"
                "ax.set_title('Text in a title'); ax.legend()\nfig.savefig('/work/out/plot.png')\n"
                "from matplotlib import font_manager\n"
                "print(font_manager.findfont('sans'), open('/work/out/plot.png', 'rb').read(4))")
        out = self.mkdir("out", 0o777)
        r = self.jail_py(plot, opts=("--rw", out + ":/work/out"))
        self.assertOk(r)
        self.assertNotIn("Fontconfig error", r.stderr)
        self.assertNotIn("matplotlibrc", r.stderr)
        self.assertIn(".ttf", r.stdout)  # a real font was found for the text
        with open(os.path.join(out, "plot.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    main()
