"""Clients of `stockade serve`: a Pool (a running server, or a private one)
and Sessions. JSON lines over a Unix socket; see stockade-serve(1)."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any, Dict, Iterable, Optional, Sequence, Union

from ._binary import common_args, find_binary
from ._result import CellResult, Result, StockadeError, decode_files, encode_files


def default_socket() -> str:
    if os.geteuid() == 0:
        return "/run/stockade/serve.sock"
    x = os.environ.get("XDG_RUNTIME_DIR", "")
    if x.startswith("/"):
        return os.path.join(x, "stockade", "serve.sock")
    return f"/tmp/stockade-{os.geteuid()}/serve.sock"


class _Connection:
    def __init__(self, path: str, timeout: Optional[float] = None):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise StockadeError(f"stockade serve: cannot connect to {path}: {e.strerror or e}") from None
        self.file = self.sock.makefile("rb")
        self.lock = threading.Lock()
        self.next_id = 0

    def call(self, req: Dict[str, Any]) -> Dict[str, Any]:
        with self.lock:
            self.next_id += 1
            req = dict(req, id=self.next_id)
            self.sock.sendall((json.dumps(req) + "\n").encode())
            while True:
                line = self.file.readline()
                if not line:
                    raise StockadeError("stockade serve closed the connection")
                ans = json.loads(line)
                if ans.get("id") == req["id"]:
                    break
        err = ans.get("error")
        if isinstance(err, dict) and "code" in err:
            raise StockadeError(f"stockade serve: {err.get('message', '')}", code=err.get("code"))
        return ans

    def close(self):
        try:
            self.file.close()
        finally:
            self.sock.close()


class Session:
    """A jail that lives across calls, with one Python namespace (a notebook
    kernel). With no pool, it starts a private server of its own."""

    def __init__(self, pool: Optional["Pool"] = None, idle_timeout: Optional[float] = None, **server_options):
        self._own_pool = pool is None
        self.pool = pool if pool is not None else Pool(size=0, **server_options)
        req: Dict[str, Any] = {"op": "session.open"}
        if idle_timeout is not None:
            req["idle_timeout"] = idle_timeout
        try:
            self.id = self.pool._conn.call(req)["session"]
        except BaseException:
            if self._own_pool:
                self.pool.close()
            raise
        self.closed = False

    def run(self, code: str, files: Optional[Dict[str, Union[str, bytes]]] = None,
            return_files: Sequence[str] = (), timeout: Optional[float] = None) -> CellResult:
        req: Dict[str, Any] = {"op": "session.run", "session": self.id, "code": code,
                               "files": encode_files(files), "return_files": list(return_files)}
        if timeout is not None:
            req["timeout"] = timeout
        a = self.pool._conn.call(req)
        return CellResult(stdout=a.get("stdout", ""), stderr=a.get("stderr", ""), value=a.get("value"),
                          error=a.get("error"), files=decode_files(a.get("files") or {}))

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.pool._conn.call({"op": "session.close", "session": self.id})
        except StockadeError:
            pass  # already ended (idle, killed): nothing to close
        finally:
            if self._own_pool:
                self.pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pool:
    """Warm jails from `stockade serve`. Pool(...) starts a private server
    (ended by close()); connect() uses one already running."""

    def __init__(self, size: int = 2, preload: Iterable[str] = (), profile=None, network=None,
                 ro: Iterable[str] = (), rw: Iterable[str] = (), env: Optional[Dict[str, str]] = None,
                 sets: Iterable[str] = (), max_jails: Optional[int] = None, socket_path: Optional[str] = None,
                 _connect_only: bool = False):
        self._proc = None
        self._tmp = None
        if _connect_only:
            self._conn = _Connection(socket_path or default_socket())
            return
        self._tmp = tempfile.mkdtemp(prefix="stockade-pool-")
        path = os.path.join(self._tmp, "serve.sock")
        argv = [find_binary(), "serve", "--socket", path, "--pool", str(size)]
        argv += common_args(profile, network, ro, rw, env, sets)
        if preload:
            argv += ["--preload", ",".join(preload)]
        if max_jails:
            argv += ["--max-jails", str(max_jails)]
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace")
                self._cleanup()
                lines = [l for l in err.splitlines() if l.startswith("stockade: ")]
                raise StockadeError(lines[-1] if lines else f"stockade serve exited {self._proc.returncode}")
            try:
                self._conn = _Connection(path)
                break
            except StockadeError:
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.01)

    def run(self, code: Optional[str] = None, script: Optional[str] = None,
            files: Optional[Dict[str, Union[str, bytes]]] = None, args: Sequence[str] = (),
            stdin: Optional[Union[str, bytes]] = None, timeout: Optional[float] = None,
            return_files: Sequence[str] = (), limits: Optional[Dict[str, Any]] = None) -> Result:
        if (code is None) == (script is None):
            raise ValueError("give exactly one of code or script (a path among files)")
        req: Dict[str, Any] = {"op": "run", "files": encode_files(files), "argv": [str(a) for a in args],
                               "return_files": list(return_files)}
        if code is not None:
            req["code"] = code
        else:
            req["script"] = script
        if stdin is not None:
            req["stdin"] = encode_files({"-": stdin})["-"]
        if timeout is not None:
            req["timeout"] = timeout
        if limits:
            req["limits"] = limits
        return Result.from_json(self._conn.call(req))

    def session(self, idle_timeout: Optional[float] = None) -> Session:
        return Session(pool=self, idle_timeout=idle_timeout)

    def stats(self, memory: bool = False) -> Dict[str, Any]:
        """The server's counters; with memory=True also the PSS of each jail (see stockade-serve(1))."""
        req: Dict[str, Any] = {"op": "stats"}
        if memory:
            req["memory"] = True
        return self._conn.call(req)

    def wait_warm(self, n: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.stats()["warm"] < n:
            if time.monotonic() > deadline:
                raise StockadeError("stockade serve: the pool did not warm in time")
            time.sleep(0.01)

    def _cleanup(self):
        if self._tmp:
            try:
                os.rmdir(self._tmp)
            except OSError:
                pass
            self._tmp = None

    def close(self):
        conn = getattr(self, "_conn", None)
        if conn:
            conn.close()
            self._conn = None
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc and self._proc.stderr:
            self._proc.stderr.close()
        self._cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(socket_path: Optional[str] = None) -> Pool:
    """A Pool on a `stockade serve` that is already running (default socket:
    $XDG_RUNTIME_DIR/stockade/serve.sock, /run/stockade/serve.sock as root)."""
    return Pool(socket_path=socket_path, _connect_only=True)
