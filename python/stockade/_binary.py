"""Finding the stockade binary, and the one-shot path: one `stockade run` per call."""
import json
import os
import shutil
import subprocess
import tempfile
from typing import Dict, Iterable, Optional, Sequence, Union

from ._result import Result, StockadeError


def find_binary() -> str:
    path = os.environ.get("STOCKADE_BIN") or shutil.which("stockade")
    if not path:
        raise StockadeError("stockade: not found (put it on PATH or set STOCKADE_BIN)")
    return path


def stockade_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.startswith("stockade: ")]
    return lines[-1] if lines else (stderr.strip().splitlines() or ["stockade failed (exit 125)"])[-1]


def common_args(profile=None, network=None, ro: Iterable[str] = (), rw: Iterable[str] = (),
                env: Optional[Dict[str, str]] = None, sets: Iterable[str] = ()) -> list:
    argv = []
    if profile:
        argv += ["-p", str(profile)]
    if network:
        argv += ["--set", f"network.mode={network}"]
    for b in ro:
        argv += ["--ro", str(b)]
    for b in rw:
        argv += ["--rw", str(b)]
    for k, v in (env or {}).items():
        argv += ["--env", f"{k}={v}"]
    for s in sets:
        argv += ["--set", s]
    return argv


def run_once(code: Optional[str] = None, script: Optional[str] = None,
             files: Optional[Dict[str, Union[str, bytes]]] = None, args: Sequence[str] = (),
             stdin: Optional[Union[str, bytes]] = None, timeout: Optional[float] = None, profile=None, network=None,
             ro: Iterable[str] = (), rw: Iterable[str] = (), env: Optional[Dict[str, str]] = None,
             sets: Iterable[str] = ()) -> Result:
    if (code is None) == (script is None):
        raise ValueError("give exactly one of code or script")
    binary = find_binary()
    with tempfile.TemporaryDirectory(prefix="stockade-py-") as tmp:
        os.chmod(tmp, 0o755)
        argv = [binary, "run", "-q", "--result", os.path.join(tmp, "result.json")]
        argv += common_args(profile, network, ro, rw, env, sets)
        if files:
            # The files, at the jail's working directory, writable there.
            work = os.path.join(tmp, "work")
            os.mkdir(work)
            for path, content in files.items():
                if os.path.isabs(path) or ".." in path.split("/"):
                    raise ValueError(f"files: {path!r} must be relative, below the working directory")
                dest = os.path.join(work, path)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(content.encode() if isinstance(content, str) else content)
            if os.geteuid() == 0:
                # Root's jail runs as an unprivileged host user (65534 by default).
                for root, dirs, names in os.walk(work):
                    for n in [root] + [os.path.join(root, x) for x in dirs + names]:
                        os.chown(n, 65534, 65534)
            argv += ["--rw", f"{work}:/work/task", "--cwd", "/work/task"]
        if timeout is not None:
            argv += ["--timeout", f"{float(timeout)}s"]
        if code is not None:
            argv += ["-c", code]
        else:
            argv += ["--", str(script)]
        argv += [str(a) for a in args]
        data = stdin.encode() if isinstance(stdin, str) else stdin
        p = subprocess.run(argv, input=data, stdin=None if data is not None else subprocess.DEVNULL,
                           capture_output=True)
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        # stockade's own warnings (a limit held by rlimits only) are not the program's.
        own = [l for l in err.splitlines(True) if l.startswith("stockade: warning: ")]
        prog_err = "".join(l for l in err.splitlines(True) if not l.startswith("stockade: warning: "))
        try:
            with open(os.path.join(tmp, "result.json")) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            doc = None
        if p.returncode == 125 and (doc is None or doc.get("status") == "setup_error"):
            raise StockadeError(stockade_line(err))
        if doc is None:
            raise StockadeError(f"stockade exited {p.returncode} without a result: {stockade_line(err)}")
        r = Result.from_json(doc, stdout=out, stderr=prog_err)
        r.warnings = [l.strip() for l in own]
        return r
