"""stockade: run untrusted Python in a jail, from Python.

    import stockade
    r = stockade.run(code="print(6 * 7)")          # one `stockade run` per call
    r.ok, r.stdout, r.status

    with stockade.Pool(preload=["numpy"]) as pool:  # warm jails (a private `stockade serve`)
        pool.run(code="import numpy; print(numpy.ones(3).sum())")

    with stockade.Session() as s:                   # one Python namespace across calls
        s.run("x = 41"); s.run("x + 1").value       # '42'

    pool = stockade.connect()                       # a `stockade serve` already running

No shell anywhere: the binary (on PATH, or STOCKADE_BIN) is started with an
argv list. stockade's own failures raise StockadeError with its one line.
"""
from typing import Dict, Iterable, Optional, Sequence, Union

from ._binary import find_binary, run_once
from ._result import CellResult, NetworkRecord, Result, StockadeError, Violation
from ._serve import Pool, Session, connect

__all__ = ["run", "Pool", "Session", "connect", "Result", "CellResult", "Violation", "NetworkRecord",
           "StockadeError", "find_binary"]


def run(code: Optional[str] = None, script: Optional[str] = None,
        files: Optional[Dict[str, Union[str, bytes]]] = None, timeout: Optional[float] = None, profile=None,
        network: Optional[str] = None, ro: Iterable[str] = (), rw: Iterable[str] = (), args: Sequence[str] = (),
        stdin: Optional[Union[str, bytes]] = None, env: Optional[Dict[str, str]] = None,
        pool: Optional[Pool] = None) -> Result:
    """Runs code (or a script on the host) in a fresh jail and returns its Result.

    files: path (relative to the working directory) -> str or bytes, put in
    the jail's working directory before the run. With pool=, the run goes to
    that server's warm jails (script is then a path among files)."""
    if pool is not None:
        return pool.run(code=code, script=script, files=files, args=args, stdin=stdin, timeout=timeout)
    return run_once(code=code, script=script, files=files, args=args, stdin=stdin, timeout=timeout, profile=profile,
                    network=network, ro=ro, rw=rw, env=env)
