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
_memory = int(sys.argv[4]) if len(sys.argv) > 4 else 0  # a template's memory limit in bytes, 0: none
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


def _rehearse():
    """A task's path through the runner, once, on nothing, while the jail
    waits for one: the pages it writes (a fork's copies of the template's,
    the parser's and the compiler's heap) are then this process's already,
    and so are those it reads (a fork's first read of a page is a fault, or
    a hypervisor's exit, of its own), and the task's answer does not wait on
    them. Leaves nothing a task could see: no module, no file, no output;
    its exit steps (threads joined, atexit) are the task's alone."""
    argv, main = sys.argv, sys.modules.get("__main__")
    msg = _loads('{"code":"x = [1]\\nx.append(len(x))","files":{},"op":"run","return_cap":8388608,"return_files":[]}')
    _task(msg, out=os.curdir, final=False)
    _dumps({"done": True, "files": _read_files(msg.get("return_files"), 0), "exit": 0})
    sys.argv, sys.modules["__main__"] = argv, main


def _run_task(msg):
    code = _task(msg)
    _answer(msg, code)
    os._exit(code)


def _answer(msg, code):
    files = {}
    try:
        files = _read_files(msg.get("return_files"), int(msg.get("return_cap", 1 << 24)))
    except Exception:
        pass
    # All its output is written: closed now, the server answers from here
    # rather than after this process's teardown. Both in one call: the
    # server is woken once for the two, not once each.
    os.closerange(1, 3)
    try:
        _send({"done": True, "files": files, "exit": code})
    except Exception:
        pass


def _task(msg, out="out", final=True):
    """A task, up to its answer: its exit code. `out`: /work/out, where a
    task leaves what it makes (images for MCP clients); a rehearsal's is a
    directory that is there already."""
    os.makedirs(out, exist_ok=True)
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
    if not final:
        _flush()
        return code
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
    return code


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


# ---- the template --------------------------------------------------------
# MODE "template:task" or "template:session": this python imports the
# preloads once and then only forks. No task runs in it, and nothing a task
# sends ever reaches it: a fork request comes from the server alone, with the
# new jail's fds, and the task's code comes later, on the task's own control
# socket. It has no capability (Plan::template_program). Each fork makes a
# user namespace of its own, and in it the task's other namespaces, mounts
# and init; then it drops every capability and installs the task's Landlock
# rules and seccomp filter, as a cloned jail's last steps do
# (jail/program.cpp), before it asks for a task. The forking is done in C
# (jail/forkd.c, loaded from beside this file): see there for why.

# jail_interface.hpp's WireMsg: type, err, status, pad, t_ns, user_us, sys_us,
# max_rss_kb, text[456].
_WIRE = "=IiiIQQQQ456s"
_SETUP_ERROR = 1


class _Sys:
    """The few system calls the standard library does not have, through libc."""

    def __init__(self):
        import ctypes

        self.ct = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long

    def check(self, rc, what):
        if rc < 0:
            err = self.ct.get_errno()
            raise OSError(err, "%s: %s" % (what, os.strerror(err)))
        return rc

    def call(self, what, nr, *args):
        return self.check(self.libc.syscall(self.ct.c_long(nr), *args), what)


def _wire(kind, text="", err=0, status=0, usage=(0, 0, 0)):
    text = text.encode(errors="replace")[:455]
    t = _std("time")
    return _std("struct").pack(_WIRE, kind, err, status, 0, t.clock_gettime_ns(t.CLOCK_MONOTONIC), *usage, text)


def _report(sock, kind, text="", err=0, status=0, fds=()):
    import socket

    msg = _wire(kind, text, err, status)
    if fds:
        socket.send_fds(sock, [msg], list(fds))
    else:
        sock.send(msg)


def _elf_interpreter(path):
    struct = _std("struct")
    try:
        with open(path, "rb") as f:
            eh = f.read(64)
            if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2:
                return None
            phoff, = struct.unpack_from("<Q", eh, 32)
            phentsize, phnum = struct.unpack_from("<HH", eh, 54)
            if phentsize != 56 or phnum > 256:
                return None
            for i in range(phnum):
                f.seek(phoff + i * 56)
                ph = f.read(56)
                ptype, _, offset, _, _, filesz = struct.unpack_from("<IIQQQQ", ph)
                if ptype == 3 and 0 < filesz <= 4096:
                    f.seek(offset)
                    return f.read(filesz).split(b"\0")[0].decode()
    except OSError:
        return None
    return None


def _exec_ruleset(sc, patterns, program):
    """jail/exec_rules.cpp's rules, as a Landlock ruleset: execute only below
    what exec_allow names (and the interpreters of what it names); moving
    files is not refused."""
    ct, struct = sc.ct, _std("struct")
    EXECUTE, REFER = 1, 1 << 13
    attr = ct.create_string_buffer(struct.pack("=Q", EXECUTE | REFER))
    ruleset = sc.call("landlock_create_ruleset", 444, attr, ct.c_size_t(8), 0)
    done = set()

    def add(path, access, interps):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            rule = ct.create_string_buffer(struct.pack("=Qi", access, fd))
            sc.call("landlock_add_rule " + path, 445, ruleset, 1, rule, 0)
            if interps is not None and _std("stat").S_ISREG(os.fstat(fd).st_mode) and path not in done:
                done.add(path)
                i = _elf_interpreter(path)
                if i:
                    interps.add(i)
        finally:
            os.close(fd)

    interps = set()
    add("/", REFER, None)
    for pat in patterns or [program]:
        if pat.endswith("/*") and not any(c in pat[:-2] for c in "*?["):
            add(pat[:-2], EXECUTE, interps)
        elif not any(c in pat for c in "*?["):
            add(pat, EXECUTE, interps)
        else:
            for path in _std("glob").glob(pat):
                add(path, EXECUTE, interps)
    if program not in done:
        done.add(program)
        i = _elf_interpreter(program)
        if i:
            interps.add(i)
    for i in interps:
        add(i, EXECUTE, None)
    return ruleset


_rulesets = {}


def _template_ruleset(sc, req):
    """The task's exec rules, made once in the template and applied by each
    fork: they name the same files for every task of one template, and
    making them (globs, ELF headers, a dozen opens) was a tenth of a fork's
    time. Landlock rules hold inodes, not paths, so they hold in each fork's
    mount namespace alike. Not for a rule under the task's own scratch, which
    is a fresh tmpfs in each fork: those forks make their own (None). The fd
    never reaches a task: each fork closes it before its program starts."""
    rules = req.get("exec_rules")
    if rules is None:
        return None
    scratch = [t[0].rstrip("/") + "/" for t in req.get("tmpfs", ())]
    if any((p.rstrip("/") + "/").startswith(s) for p in list(rules) + [req["program"]] for s in scratch):
        return None
    key = (tuple(rules), req["program"])
    if key not in _rulesets:
        _rulesets[key] = _exec_ruleset(sc, rules, req["program"])
    return _rulesets[key]


def _forkd(sc):
    """jail/forkd.c, as the server put it beside this file. Through PyDLL:
    the GIL stays held across each call, as os.fork holds it."""
    ct = sc.ct
    lib = ct.PyDLL(os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkd.so"))
    lib.stk_configure.argtypes = [ct.c_char_p, ct.c_char_p, ct.c_size_t]
    lib.stk_serve.argtypes = [ct.c_int, ct.c_char_p, ct.c_size_t, ct.POINTER(ct.c_int)]
    lib.stk_serve.restype = ct.c_long
    lib.stk_fork.argtypes = [ct.POINTER(ct.c_int)]
    lib.stk_fork.restype = ct.c_long
    lib.stk_program.argtypes = [ct.c_int]
    lib.stk_trial.restype = ct.c_long
    lib.stk_learn.argtypes = [ct.c_int]
    lib.stk_prefault.argtypes = [ct.POINTER(ct.c_uint64), ct.c_int]
    lib.stk_prefault.restype = None
    lib.stk_hugify.argtypes = [ct.c_int]
    return lib


def _forkd_conf(req, uid, gid):
    """What every fork of this request does alike, as forkd.c's stk_configure
    reads it: one "key value" line each, a path or name last."""
    lines = ["uid %d" % uid, "gid %d" % gid, "cwd %s" % req["cwd"], "hostname %s" % req.get("hostname", "")]
    for path, size, mode, noexec in req.get("tmpfs", ()):
        lines.append("tmpfs %d %o %d %s" % (size, mode, 1 if noexec else 0, path))
    lines += ["devpts %s" % path for path in req.get("devpts", ())]
    if req.get("proc"):
        lines.append("proc %s" % req["proc"])
    lines.append("proc_pid %d" % (1 if req.get("proc_pid") else 0))
    lines.append("loopback %d" % (1 if req.get("loopback") else 0))
    lines.append("proxy_port %d" % int(req.get("proxy_port") or 0))
    lines.append("cpus %d" % int(-(-(req.get("cpus") or 0) // 1)))
    lines += ["sysctl %d %s" % (value, name) for name, value in req.get("sysctls", ())]
    lines += ["rlimit %d %d %d" % (res, soft, hard) for res, soft, hard in req.get("rlimits", ())]
    if any("\n" in line for line in lines):
        raise ValueError("a newline in the template's fork request")
    return "\n".join(lines).encode()


def _become_program(sc, forkd, req, ruleset):
    """In the task's program, forked by forkd.c with its jail built around it:
    python's own after-fork steps, then the program's last ones (its exec
    rules, fds, limits and filter: stk_program), then a fresh draw of what is
    seeded at start."""
    sc.ct.pythonapi.PyOS_AfterFork_Child()
    if ruleset is None and req.get("exec_rules") is not None:
        ruleset = _exec_ruleset(sc, req["exec_rules"], req["program"])
    forkd.stk_program(-1 if ruleset is None else ruleset)
    _reseed()


def _reseed():
    """Seeded state that a fork would share: every task draws its own."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    nprandom = sys.modules.get("numpy.random")
    if nprandom is not None:
        try:
            nprandom.seed()
        except Exception:
            pass
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile._name_sequence = None


def _learn(sc, forkd, loaded):
    """Which of the template's pages a fork's program writes or reads before
    its answer: a trial fork takes a program's python steps and rehearses a
    task (trusted code only; it is no jail, and nothing of a task's runs in
    it), then says which pages it copied or mapped. Every fork from then on
    has those in bulk (forkd.c): a third of the cost of faulting them one by
    one. Best effort: a page it missed faults as before."""
    r, w = os.pipe()
    pid = forkd.stk_trial()
    if pid == 0:
        try:
            os.close(r)
            # _become_program's steps, stk_program's jail-only work aside.
            sc.ct.pythonapi.PyOS_AfterFork_Child()
            forkd.stk_report_fd()
            _reseed()
            [sys.modules.get(name) for name in set(sys.modules) - loaded]
            _rehearse()
            # Then a task's way through the runner, its output and answer
            # to /dev/null. Not its /work/out: this is the template's /work.
            global _fd, _ctl_in
            null = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                os.dup2(null, fd)
            task_r, task_w = os.pipe()
            os.write(task_w, b'{"code":"print(1)","files":{},"op":"run","return_cap":8388608,"return_files":[]}\n')
            _fd, _ctl_in = null, os.fdopen(task_r, "rb", buffering=65536)
            msg = _recv()
            _answer(msg, _task(msg, out=os.curdir))
            forkd.stk_learn(w)
        finally:
            os._exit(0)
    os.close(w)
    # A trial that hangs (a preload's at-fork or exit handler) costs the
    # template its head start, not its start: killed after 5 s.
    time = _std("time")
    deadline = time.monotonic() + 5
    os.set_blocking(r, False)
    chunks = []
    while True:
        try:
            chunk = os.read(r, 1 << 16)
        except BlockingIOError:
            if time.monotonic() > deadline:
                chunks = []
                break
            time.sleep(0.002)
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    if pid > 0:
        try:
            os.kill(pid, _signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)
    data = b"".join(chunks)
    n = len(data) // 16
    if n:
        forkd.stk_prefault((sc.ct.c_uint64 * (2 * n)).from_buffer_copy(data[:16 * n]), n)


def _huge_budget():
    """How many 2 MiB blocks of code the template may copy onto huge pages
    (forkd.c, stk_hugify): -1, as many as it takes, without a memory limit;
    with one, only what fits in half of it beside what the template holds
    already. The copies are charged to the template, and one that passed its
    limit would be killed before its first fork."""
    if not _memory:
        return -1
    try:
        with open("/proc/self/statm") as f:
            held = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, (_memory // 2 - held) // (2 << 20))


def _template(mode):
    global _fd, _ctl_in
    # What a jail that is not forked has loaded: the preloads and the
    # runner's own. Whatever the template imports beyond it is unloaded in
    # each task, so that a task's own module of that name is the one it gets.
    loaded = set(sys.modules)
    sc = _Sys()
    forkd = _forkd(sc)
    # Before the trial fork: what it finds to prefault is then what is left.
    forkd.stk_hugify(_huge_budget())
    socket = _std("socket")
    for m in ("struct", "time", "resource", "fcntl", "stat", "glob"):
        _std(m)
    ctl = socket.socket(fileno=os.dup(_fd))
    ct = sc.ct
    buf = ct.create_string_buffer(1 << 16)
    fdv = (ct.c_int * 6)()
    req = ruleset = None
    # Every object so far into the permanent generation: a fork's collector
    # then never walks (and so never copies) the template's pages.
    import gc

    gc.collect()
    gc.freeze()
    _learn(sc, forkd, loaded)
    _send({"ready": True})
    while True:
        # Forks until a request comes that the C half is not set up for.
        n = forkd.stk_serve(ctl.fileno(), buf, len(buf), fdv)
        if n < 0:
            os._exit(0)
        if n > 0:
            fds = list(fdv)
            try:
                data = buf.raw[:n]
                req = _loads(data.decode())
                # As the parent namespace sees them.
                conf = _forkd_conf(req, os.getuid(), os.getgid())
                if forkd.stk_configure(conf, data, len(data)) != 0:
                    raise OSError(22, "a fork request the template cannot make: %r" % conf)
                ruleset = _template_ruleset(sc, req)
                n = forkd.stk_fork(fdv)
            except Exception as e:
                try:
                    _report(socket.socket(fileno=os.dup(fds[0])), _SETUP_ERROR, "template fork: %s" % (e,))
                except OSError:
                    pass
                for fd in fds:
                    os.close(fd)
                continue
            if n != 0:
                continue
        # The task's program, its jail built around it.
        try:
            ctl.detach()
            _become_program(sc, forkd, req, ruleset)
        except BaseException as e:
            try:
                _report(socket.socket(fileno=os.dup(forkd.stk_report_fd())), _SETUP_ERROR, "template fork: %s" % (e,))
            except BaseException:
                pass
            os._exit(125)
        _fd = 5
        _ctl_in = os.fdopen(_fd, "rb", buffering=65536, closefd=False)
        # Out of sys.modules but kept: freeing them would write to (and so
        # copy) every page they are on, a tenth of a fork's time.
        global _unloaded
        _unloaded = [sys.modules.pop(name) for name in set(sys.modules) - loaded]
        return


# A fork copies only the thread that forks: a template must have no other.
# The thread pools that BLAS and OpenMP start when numpy is imported would be
# missing in every fork while their state said they were there (a fork's
# first large matmul, or the fork itself in their at-fork handlers, would
# wait for them forever). So the template's preloads start with one thread
# each; a task may start more (threadpoolctl, openblas_set_num_threads).
_ONE_THREAD = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _main():
    global _mode
    failed = None
    template = _mode.startswith("template:")
    set_here = [k for k in _ONE_THREAD if k not in os.environ] if template else []
    for k in set_here:
        os.environ[k] = "1"
    for name in _preload:
        try:
            __import__(name)
        except BaseException as e:
            failed = "preload %s: %s: %s" % (name, type(e).__name__, e)
            break
    # Read at load: the task's environment is the profile's again.
    for k in set_here:
        del os.environ[k]
    threads = _threads() if template and not failed else 1
    if threads > 1:
        failed = ("template: its preloads left %d threads running, and a fork copies only one; "
                  "the pool starts its jails without a template" % threads)
    if failed:
        _send({"ready": False, "error": failed})
        os._exit(125)
    if template:
        _mode = _mode.split(":", 1)[1]
        _template(_mode)
    if _mode == "session":
        _session()
    _rehearse()
    _send({"ready": True})
    msg = _recv()
    if msg is None:
        os._exit(0)
    _run_task(msg)


_main()
