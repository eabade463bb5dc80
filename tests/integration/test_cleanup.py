"""Nothing is left on the host after a run: no mounts, no processes, no files,
whether the run succeeded, failed in setup, was killed or timed out."""
import os
import signal
import subprocess
import time

from harness import JailTest, host_pids_with_cmdline, main


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(l.split()[3:5]) for l in f)


def tmp_entries():
    return set(os.listdir("/tmp"))


class CleanupTest(JailTest):
    def snapshot(self):
        return host_mounts(), tmp_entries() - {os.path.basename(self.ws)}

    def test_nothing_left_behind(self):
        before_mounts, before_tmp = self.snapshot()
        marker = f"stockade-cleanup-{os.getpid()}-{time.time_ns()}"
        s = self.write("bg.py", "import os, subprocess, sys\n"
                                "subprocess.Popen(['/usr/bin/python3', '-c', 'import time; time.sleep(60)', sys.argv[1]],"
                                " start_new_session=True)\n"
                                "open('/tmp/scratch', 'w').write('x')\n")
        # Each run must really have happened as meant (a stockade that started
        # nothing would leave nothing too): its exit status, and what it said.
        runs = [
            (("run", s, marker), 0, ""),                                   # leaves a background child behind
            (("run", "-c", "raise SystemExit(3)"), 3, ""),                 # fails
            (("run", "--ro", "/nonexistent", "-c", "pass"), 125, "/nonexistent"),  # setup error
            (("run", "--cwd", "/nowhere", "-c", "pass"), 125, "/nowhere"),  # error inside the jail
            (("exec", "--", "missing-program"), 127, "missing-program"),
        ]
        for args, status, said in runs:
            r = self.stockade(*args)
            self.assertEqual(r.returncode, status, f"{args}: {r.stderr}")
            self.assertIn(said, r.stderr)
        # The background child of the first run did start (it is gone now: below).
        # Killed from outside mid-run.
        p = subprocess.Popen(self.prefix() + [self.bin, "run", "-c",
                             f"import time; print('up', flush=True); time.sleep(60)  # {marker}"],
                             stdout=subprocess.PIPE, text=True, env=self.env())
        self.procs.append(p)
        p.stdout.readline()
        p.kill()
        p.wait()
        time.sleep(0.5)
        self.assertEqual(host_pids_with_cmdline(marker), [])
        after_mounts, after_tmp = self.snapshot()
        self.assertEqual(before_mounts, after_mounts)
        self.assertEqual(sorted(after_tmp - before_tmp), [])


if __name__ == "__main__":
    main()
