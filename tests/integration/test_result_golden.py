"""Golden files pin the result document for each status. Measurements (times,
sizes, counts that vary run to run) and what depends on the host's cgroups are
replaced by their type before the comparison; everything else must match the
file in golden/ exactly. STOCKADE_UPDATE_GOLDEN=1 rewrites the files."""
import json
import os
import time

from harness import JailTest, main

HERE = os.path.dirname(os.path.abspath(__file__))
MEASURED = {"wall_ms", "setup_ms", "cpu_user_ms", "cpu_sys_ms", "memory_peak_bytes", "pids_peak", "oom_kills",
            "cgroup", "degraded"}

CASES = {
    "ok": (["run", "-c", "print('hi')"], 0),
    "exit_nonzero": (["run", "-c", "raise SystemExit(3)"], 3),
    "signaled": (["run", "-c", "import os; os.kill(os.getpid(), 9)"], 137),
    "timeout_wall": (["run", "--timeout", "500ms", "-c", "import time; time.sleep(10)"], 124),
    "timeout_cpu": (["run", "--cpu-time", "500ms", "-c", "while True: pass"], 124),
    "output_limit": (["run", "--output-limit", "1000", "--set", "limits.output_action=kill", "-c",
                      "import sys\nwhile True: sys.stdout.write('x' * 100)"], 137),
    "truncated": (["run", "--output-limit", "1000", "-c", "print('x' * 5000)"], 0),
    "seccomp_violation": (["run", "--set", "seccomp.default_action=kill", "-c",
                           "import ctypes; ctypes.CDLL(None).syscall(238, 0, 0, 0)"], 159),
    "refused": (["run", "-c", "import ctypes; ctypes.CDLL(None).ptrace(0, 0, 0, 0)"], 0),
    "setup_error": (["run", "--ro", "/nonexistent-golden", "-c", "pass"], 125),
}


def normalize(doc):
    out = {}
    for k, v in doc.items():
        if k in MEASURED:
            out[k] = f"<{type(v).__name__}>" if k not in ("cgroup", "degraded", "oom_kills", "pids_peak") else "<host>"
        elif k == "supervisor":
            out[k] = {kk: f"<{type(vv).__name__}>" for kk, vv in v.items()}
        elif k == "profile":
            out[k] = {"name": v["name"], "hash": "<hash>" if len(v["hash"]) == 16 else v["hash"]}
        elif doc.get("status") == "timeout_cpu" and k in ("signal", "killed_by_stockade"):
            out[k] = "<host>"  # the cgroup's total (SIGKILL by stockade) or RLIMIT_CPU (SIGXCPU)
        elif k == "stdout_bytes" and isinstance(v, int) and v > 1000:
            out[k] = "<int>"  # how far a flood got before the kill
        else:
            out[k] = v
    return out


class GoldenTest(JailTest):
    def test_each_status(self):
        if self.drop:
            os.chmod(self.ws, 0o777)
        update = os.environ.get("STOCKADE_UPDATE_GOLDEN") == "1"
        for name, (args, code) in CASES.items():
            with self.subTest(status=name):
                path = self.path(f"{name}.json")
                r = self.stockade(args[0], "--result", path, *args[1:])
                self.assertEqual(r.returncode, code, r.stderr)
                with open(path) as f:
                    got = normalize(json.load(f))
                golden = os.path.join(HERE, "golden", f"{name}.json")
                if update:
                    with open(golden, "w") as f:
                        json.dump(got, f, indent=2)
                        f.write("\n")
                with open(golden) as f:
                    self.assertEqual(got, json.load(f))


if __name__ == "__main__":
    main()
