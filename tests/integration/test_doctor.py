"""stockade doctor: the table, --json, the exit status (0 ok, 1 degraded, 2
cannot run), the fix for each failure, and --clean for stale cgroups."""
import json
import os
import subprocess

from harness import JailTest, main


class DoctorTest(JailTest):
    def doctor(self, *args):
        r = self.stockade("doctor", "--json", *args, timeout=120)
        return r, json.loads(r.stdout)

    def test_verdict_matches_the_checks_and_the_exit_status(self):
        r, doc = self.doctor()
        states = {c["check"]: c for c in doc["checks"]}
        for name in ("kernel", "namespaces", "seccomp", "landlock", "clone3", "user.max_user_namespaces",
                     "cgroup layout", "cgroup limits", "container", "profile", "python", "binds", "try-run"):
            self.assertIn(name, states)
        self.assertEqual(states["namespaces"]["state"], "ok")
        self.assertEqual(r.returncode, doc["exit"])
        self.assertEqual(doc["verdict"], {0: "ok", 1: "degraded", 2: "cannot_run"}[r.returncode])
        # Whatever doctor says of the cgroup, a real run agrees with it.
        run = self.stockade("run", "--result", self.path("r.json"), "-c", "pass")
        with open(self.path("r.json")) as f:
            degraded = [d["limit"] for d in json.load(f)["degraded"] if d["limit"] != "memfd_noexec"]
        self.assertEqual(r.returncode == 1, bool(degraded), (doc, degraded))
        self.assertEqual(states["cgroup limits"]["state"] == "warn", "cgroup" in degraded)
        if states["cgroup limits"]["state"] == "warn":
            self.assertIn("Delegate=yes", states["cgroup limits"]["fix"])
        # The table for people says the same.
        t = self.stockade("doctor", timeout=120)
        self.assertEqual(t.returncode, r.returncode)
        self.assertIn("try-run", t.stdout)

    def test_a_missing_bind_cannot_run_and_says_how_to_fix_it(self):
        r, doc = self.doctor("--ro", "/nonexistent/data:/data")
        self.assertEqual(r.returncode, 2)
        states = {c["check"]: c for c in doc["checks"]}
        self.assertEqual(states["binds"]["state"], "FAIL")
        self.assertIn("/nonexistent/data", states["binds"]["detail"])
        self.assertTrue(states["binds"]["fix"])
        self.assertEqual(doc["verdict"], "cannot_run")

    def test_stale_cgroups_are_found_and_cleaned(self):
        if os.geteuid() != 0 or self.drop:
            self.skipTest("needs a writable cgroup of the caller's own (root)")
        base = None
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctls, path = line.rstrip("\n").split(":", 2)
                if "pids" in ctls.split(","):
                    base = "/sys/fs/cgroup/pids" + (path if path != "/" else "")
        if not base or not os.access(base, os.W_OK):
            with open("/proc/self/cgroup") as f:
                if f.read().startswith("0::"):
                    own = open("/proc/self/cgroup").read().strip()[3:]
                    base = "/sys/fs/cgroup" + (own if own != "/" else "")
        if not base or not os.access(base, os.W_OK):
            self.skipTest("no writable cgroup here")
        p = subprocess.Popen(["true"])
        p.wait()  # a pid that is gone: a stockade that was killed
        stale = os.path.join(base, f"stockade-{p.pid}-deadbeef")
        os.mkdir(stale)
        try:
            r, doc = self.doctor()
            states = {c["check"]: c for c in doc["checks"]}
            self.assertEqual(states["stale cgroups"]["state"], "warn", states["stale cgroups"])
            self.assertIn("--clean", states["stale cgroups"]["fix"])
            r, doc = self.doctor("--clean")
            self.assertFalse(os.path.exists(stale))
        finally:
            if os.path.exists(stale):
                os.rmdir(stale)


if __name__ == "__main__":
    main()
