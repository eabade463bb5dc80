"""The result of a run, mirroring stockade's JSON result (schema 1)."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union


class StockadeError(Exception):
    """stockade itself failed (exit 125): a bad profile, a missing bind, a
    server that refused the request. `message` is its one line."""

    def __init__(self, message: str, code: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class Violation:
    syscall: str
    call: str
    errno: Optional[str]
    count: int = 1
    killed: bool = False
    core: bool = False


@dataclass
class NetworkRecord:
    method: str
    host: str
    port: int
    allowed: bool
    reason: str = ""
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass
class Result:
    status: str
    exit_code: Optional[int]
    signal: Optional[int]
    stdout: str
    stderr: str
    wall_ms: float = 0.0
    cpu_user_ms: float = 0.0
    cpu_sys_ms: float = 0.0
    memory_peak_bytes: Optional[int] = None
    violations: List[Violation] = field(default_factory=list)
    network: List[NetworkRecord] = field(default_factory=list)
    degraded: List[Any] = field(default_factory=list)
    files: Dict[str, Union[str, bytes]] = field(default_factory=dict)
    warm: Optional[bool] = None
    warnings: List[str] = field(default_factory=list)  # stockade's own (a limit held by rlimits only)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(cls, doc: Dict[str, Any], stdout: Optional[str] = None, stderr: Optional[str] = None) -> "Result":
        def pick(d, names):
            return {k: d[k] for k in names if k in d}

        return cls(
            status=doc.get("status", "setup_error"),
            exit_code=doc.get("exit_code"),
            signal=doc.get("signal"),
            stdout=doc.get("stdout", "") if stdout is None else stdout,
            stderr=doc.get("stderr", "") if stderr is None else stderr,
            wall_ms=doc.get("wall_ms") or 0.0,
            cpu_user_ms=doc.get("cpu_user_ms") or 0.0,
            cpu_sys_ms=doc.get("cpu_sys_ms") or 0.0,
            memory_peak_bytes=doc.get("memory_peak_bytes"),
            violations=[Violation(**pick(v, ("syscall", "call", "errno", "count", "killed", "core")))
                        for v in doc.get("violations") or []],
            network=[NetworkRecord(**pick(n, ("method", "host", "port", "allowed", "reason", "bytes_up", "bytes_down")))
                     for n in doc.get("network") or []],
            degraded=list(doc.get("degraded") or []),
            files=decode_files(doc.get("files") or {}),
            warm=doc.get("warm"),
            raw=doc,
        )


@dataclass
class CellResult:
    """One session.run: the cell's output, its last expression's repr, and
    the exception it raised, if any ({"type", "message", "traceback"})."""
    stdout: str
    stderr: str
    value: Optional[str]
    error: Optional[Dict[str, str]]
    files: Dict[str, Union[str, bytes]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def decode_files(files: Dict[str, Any]) -> Dict[str, Union[str, bytes]]:
    import base64

    out: Dict[str, Union[str, bytes]] = {}
    for path, v in files.items():
        if isinstance(v, dict) and "text" in v:
            out[path] = v["text"]
        elif isinstance(v, dict) and "b64" in v:
            out[path] = base64.b64decode(v["b64"])
    return out


def encode_files(files: Optional[Dict[str, Union[str, bytes]]]) -> Dict[str, Any]:
    import base64

    out: Dict[str, Any] = {}
    for path, content in (files or {}).items():
        if isinstance(content, bytes):
            out[path] = {"b64": base64.b64encode(content).decode()}
        elif isinstance(content, str):
            out[path] = content
        else:
            raise TypeError(f"files[{path!r}]: expected str or bytes")
    return out
