"""One process, one event loop, several jails at once: the shape `serve`
needs. Each jail is its own: namespaces, cgroup, filter, output."""
import os
import shutil

from harness import JailTest, main


class OneLoopManyJailsTest(JailTest):
    def setUp(self):
        super().setUp()
        helper = os.environ.get("STOCKADE_TWO_JAILS")
        if not helper:
            self.skipTest("STOCKADE_TWO_JAILS is not set (run through ctest)")
        self.helper = self.path("two-jails")
        shutil.copy2(helper, self.helper)
        os.chmod(self.helper, 0o755)

    def test_jails_run_concurrently_and_apart(self):
        code = ("import os, time\n"
                "open('/tmp/mine', 'w').write('%s')\n"
                "time.sleep(1.0)\n"
                "print('%s sees', sorted(os.listdir('/tmp')), open('/tmp/mine').read(), len(os.listdir('/proc')) < 12, flush=True)\n"
                "raise SystemExit(%d)\n")
        r = self.run_cmd([self.helper, code % ("A", "A", 3), code % ("B", "B", 4), code % ("C", "C", 5)], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        for name in "ABC":
            self.assertIn(f"{name} sees ['mine'] {name} True", lines)
        exits = sorted(int(l.split()[3]) for l in lines if l.startswith("jail "))
        self.assertEqual(exits, [3, 4, 5])
        total = float([l for l in lines if l.startswith("total_ms")][0].split()[1])
        # Three one-second jails in well under three seconds: they ran at once.
        self.assertLess(total, 2500, r.stdout)


if __name__ == "__main__":
    main()
