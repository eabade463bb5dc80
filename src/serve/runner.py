# stockade serve's runner: the first program of a warm jail. It runs inside
# the jail, under its seccomp filter, as the jail's user, so a task that
# tampers with it gains nothing it did not already have. The server treats
# everything that comes back on the control socket as hostile.
#
# argv: CONTROL_FD MODE PRELOAD  (MODE is "task" or "session"; PRELOAD is a
# comma-separated list of modules, possibly empty).
#
# Control protocol (JSON lines): the runner says {"ready": true} once warm;
# the server sends one {"op": "run", ...} (task) or many {"op": "cell", ...}
# (session); the runner answers each with {"done": ...}.
import sys
import os

_fd = int(sys.argv[1])
_mode = sys.argv[2]
_preload = [m for m in sys.argv[3].split(",") if m]
del sys.argv[1:]
# Run from a file (so the host's ps shows its name, not this source); the
# task's imports resolve from its working directory, as with `python -c`.
sys.path[0] = ""
# Where the standard library is found, without the task's own directory.
_STD_PATH = sys.path[1:]

# Paid once, here, rather than by the task: what every answer needs, and the
# compiler's first use (its AST types are made on the first compile()). What
# only some tasks need (base64 files, glob patterns, a traceback, a session's
# ast) is imported when used: every module imported here is paid again by
# every refill of the pool, which sets the rate of back-to-back tasks. So the
# C halves of json and signal, not the modules: those import re and enum,
# about 6 ms of every refill, for tasks that mostly never use them.
import builtins
import types
import atexit
import _signal

exec(compile("0", "<warm>", "exec"), {})


class _StdPath:
    """sys.path without the task's directories, while the runner imports (its
    modules import more lazily, as traceback does ast): a file the task left
    under a standard module's name is the task's, never the runner's."""

    def __enter__(self):
        self.saved = sys.path[:]
        sys.path[:] = _STD_PATH

    def __exit__(self, *exc):
        sys.path[:] = self.saved


def _std(name):
    """A standard module, imported on first use."""
    mod = sys.modules.get(name)
    if mod is None:
        with _StdPath():
            mod = __import__(name)
    return mod


_ctl_in = os.fdopen(_fd, "rb", buffering=65536, closefd=False)


# The control socket's JSON lines, on the scanner and string encoder that
# json itself runs on; the json module where a python lacks them.
try:
    from _json import make_scanner as _make_scanner, encode_basestring_ascii as _quote

    class _Decoding:
        strict = True
        object_hook = object_pairs_hook = None
        parse_float, parse_int, parse_constant = float, int, float
        memo = {}

    _scan = _make_scanner(_Decoding())

    def _loads(text):
        return _scan(text, 0)[0]

except ImportError:
    from json import loads as _loads
    from json.encoder import encode_basestring_ascii as _quote


def _dumps(obj):
    # Only what the runner sends: dicts, lists, strings, ints, bools, None.
    if isinstance(obj, str):
        return _quote(obj)
    if obj is None:
        return "null"
    if obj is True or obj is False:
        return "true" if obj else "false"
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(_quote(str(k)) + ":" + _dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(map(_dumps, obj)) + "]"
    raise TypeError("not sent on the control socket: " + type(obj).__name__)


def _send(obj):
    data = (_dumps(obj) + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(_fd, view):]


def _recv():
    line = _ctl_in.readline()
    return _loads(line.decode()) if line else None


def _write_files(files):
    for path, spec in (files or {}).items():
        data = _std("base64").b64decode(spec["b64"]) if "b64" in spec else spec["text"].encode()
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _expand(paths):
    # A pattern ("out/*.png") names what matches it, if anything.
    for p in paths or ():
        if any(c in p for c in "*?["):
            with _StdPath():
                found = sorted(_std("glob").glob(p))
            yield from found
        else:
            yield p


# What the server takes back (serve/request.hpp): files up to the cap, at most
# this many; a value or traceback cut to this many characters.
_MAX_FILES = 1000
_MAX_TEXT = 256 << 10


def _cut(s):
    if len(s) <= _MAX_TEXT:
        return s
    half = _MAX_TEXT // 2
    return s[:half] + "\n[... %d characters cut ...]\n" % (len(s) - 2 * half) + s[-half:]


def _read_files(paths, cap):
    out, used = {}, 0
    for path in _expand(paths):
        if len(out) >= _MAX_FILES:
            break
        try:
            with open(path, "rb") as f:
                data = f.read(cap - used + 1)
        except OSError as e:
            out[path] = {"error": e.strerror or str(e)}
            continue
        if used + len(data) > cap:
            out[path] = {"error": "over the returned-files cap"}
            continue
        used += len(data)
        try:
            out[path] = {"text": data.decode("utf-8")}
        except UnicodeDecodeError:
            out[path] = {"b64": _std("base64").b64encode(data).decode()}
    return out


def _stdin_from(spec):
    if spec is None:
        return
    data = _std("base64").b64decode(spec["b64"]) if "b64" in spec else spec["text"].encode()
    # An unnamed file: any size, and nothing left in /tmp for the task to see.
    fd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    os.dup2(fd, 0)
    os.close(fd)
    sys.stdin = open(0, "r", closefd=False)


def _flush():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass


def _exit_code(e):
    # SystemExit as the interpreter reads it.
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def _format_exception(e, tb):
    try:
        with _StdPath():
            return "".join(_std("traceback").format_exception(type(e), e, tb))
    except BaseException:
        # A task that broke the traceback module still gets its error named.
        try:
            return "%s: %s\n" % (type(e).__name__, e)
        except BaseException:
            return type(e).__name__ + "\n"


def _print_exception(e, tb):
    try:
        sys.stderr.write(_format_exception(e, tb))
    except Exception:
        pass


def _run_task(msg):
    # /work/out: where a task leaves what it makes (images for MCP clients).
    os.makedirs("out", exist_ok=True)
    _write_files(msg.get("files"))
    _stdin_from(msg.get("stdin"))
    script = msg.get("script")
    if script:
        with open(script, "rb") as f:
            source = f.read()
        filename = script
    else:
        source = msg.get("code", "")
        filename = "<string>"
    sys.argv = [script or "-c"] + list(msg.get("argv") or [])
    if script:
        sys.path[0] = os.path.dirname(os.path.abspath(script))
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    if script:
        main.__file__ = script
    sys.modules["__main__"] = main
    code = 0
    try:
        exec(compile(source, filename, "exec"), main.__dict__)
    except SystemExit as e:
        code = _exit_code(e)
    except KeyboardInterrupt:
        # As python itself ends on an uncaught Ctrl-C: by the signal.
        _flush()
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        os.kill(os.getpid(), _signal.SIGINT)
    except BaseException as e:
        _print_exception(e, e.__traceback__.tb_next)
        code = 1
    # What python does at exit that matters to a task: its threads joined,
    # its atexit handlers run, its output flushed. Then out, without tearing
    # the interpreter down: the jail goes anyway.
    try:
        threading = sys.modules.get("threading")
        if threading is not None:  # no thread was started without it
            threading._shutdown()
    except Exception:
        pass
    try:
        atexit._run_exitfuncs()
    except Exception:
        pass
    _flush()
    try:
        _send({"done": True, "files": _read_files(msg.get("return_files"), int(msg.get("return_cap", 1 << 24)))})
    except Exception:
        pass
    os._exit(code)


def _run_cell(msg, ns):
    reply = {"done": True, "value": None, "error": None}
    try:
        _write_files(msg.get("files"))
        tree = ast.parse(msg.get("code", ""), "<cell>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {_signal.SIGINT})
        try:
            exec(compile(tree, "<cell>", "exec"), ns)
            if last is not None:
                value = eval(compile(last, "<cell>", "eval"), ns)
                if value is not None:
                    ns["_"] = value
                    reply["value"] = _cut(repr(value))
        finally:
            _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT})
    except BaseException as e:
        tb = e.__traceback__
        # The runner's own frame is not the cell's.
        if tb is not None and tb.tb_frame.f_code is _run_cell.__code__:
            tb = tb.tb_next
        reply["error"] = {
            "type": type(e).__name__,
            "message": _cut(str(e)),
            "traceback": _cut(_format_exception(e, tb)),
        }
    _flush()
    try:
        reply["files"] = _read_files(msg.get("return_files"), int(msg.get("return_cap", 1 << 24)))
    except Exception as e:
        reply["files"] = {}
    return reply


def _session():
    # Every cell is parsed: paid here, while the session jail waits.
    global ast
    ast = _std("ast")
    # SIGINT interrupts a cell (the server's timeout), never the runner itself:
    # blocked outside cells, and a late one is dropped before the next cell.
    _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT})
    ns = {"__name__": "__main__", "__builtins__": builtins}
    main = types.ModuleType("__main__")
    main.__dict__.update(ns)
    ns = main.__dict__
    sys.modules["__main__"] = main
    sys.argv = [""]
    sys.path[0] = ""
    os.makedirs("out", exist_ok=True)
    _send({"ready": True})
    while True:
        msg = _recv()
        if msg is None:
            os._exit(0)
        while _signal.SIGINT in _signal.sigpending():
            _signal.sigwait({_signal.SIGINT})
        _send(_run_cell(msg, ns))


def _main():
    failed = None
    for name in _preload:
        try:
            __import__(name)
        except BaseException as e:
            failed = "preload %s: %s: %s" % (name, type(e).__name__, e)
            break
    if failed:
        _send({"ready": False, "error": failed})
        os._exit(125)
    if _mode == "session":
        _session()
    _send({"ready": True})
    msg = _recv()
    if msg is None:
        os._exit(0)
    _run_task(msg)


_main()
