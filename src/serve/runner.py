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


def _rehearse():
    """A task's path through the runner, once, on nothing, while the jail
    waits for one: the pages it writes (a fork's copies of the template's,
    the parser's and the compiler's heap) are then this process's already,
    and the task's answer does not wait on faulting them in. Leaves nothing a
    task could see: no module, no file, no output."""
    msg = _loads('{"code": "x = [1]\\nx.append(len(x))", "argv": [], "files": null}')
    _write_files(msg.get("files"))
    main = types.ModuleType("__main__")
    exec(compile(msg["code"], "<string>", "exec"), main.__dict__)
    _dumps({"done": True, "files": {}})


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


# ---- the template --------------------------------------------------------
# MODE "template:task" or "template:session": this python imports the
# preloads once and then only forks. No task runs in it, and nothing a task
# sends ever reaches it: a fork request comes from the server alone, with the
# new jail's fds, and the task's code comes later, on the task's own control
# socket. It has no capability (Plan::template_program). Each fork makes a
# user namespace of its own, and in it the task's other namespaces, mounts
# and init; then it drops every capability and installs the task's Landlock
# rules and seccomp filter, as a cloned jail's last steps do
# (jail/program.cpp), before it asks for a task.

_CLONE_NEWNS, _CLONE_NEWCGROUP, _CLONE_NEWUTS, _CLONE_NEWUSER = 0x20000, 0x02000000, 0x04000000, 0x10000000
_CLONE_NEWIPC, _CLONE_NEWPID, _CLONE_NEWNET, _CLONE_PARENT = 0x08000000, 0x20000000, 0x40000000, 0x8000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18
# jail_interface.hpp's WireMsg: type, err, status, pad, t_ns, user_us, sys_us,
# max_rss_kb, text[456].
_WIRE = "=IiiIQQQQ456s"
_SETUP_ERROR, _EXEC_READY, _EXIT, _PROXY_LISTENER, _HELLO = 1, 2, 4, 7, 9


class _Sys:
    """The few system calls the standard library does not have, through libc."""

    def __init__(self):
        import ctypes

        self.ct = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.pylibc = ctypes.PyDLL(None, use_errno=True)
        self.pylibc.syscall.restype = ctypes.c_long

    def check(self, rc, what):
        if rc < 0:
            err = self.ct.get_errno()
            raise OSError(err, "%s: %s" % (what, os.strerror(err)))
        return rc

    def call(self, what, nr, *args):
        return self.check(self.libc.syscall(self.ct.c_long(nr), *args), what)

    def unshare(self, flags):
        self.check(self.libc.unshare(flags), "unshare")

    def clone_task(self):
        """os.fork(), but the child is at once in a user namespace of its own
        and, in it, new mount, UTS, IPC, network and PID namespaces (it is
        their PID 1), and it is the child of this python's parent (the
        template jail's init, which reaps it). One fork where unshare would
        need two. Python's own before- and after-fork steps run as os.fork
        runs them; the template has no other thread."""
        ct = self.ct
        api = ct.pythonapi
        flags = (_CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWUTS | _CLONE_NEWIPC | _CLONE_NEWNET | _CLONE_NEWPID
                 | _CLONE_PARENT)
        api.PyOS_BeforeFork()
        # Through PyDLL: the GIL stays held across the call, as in os.fork.
        pid = self.pylibc.syscall(ct.c_long(56), ct.c_ulong(flags), ct.c_ulong(0), ct.c_ulong(0), ct.c_ulong(0),
                                  ct.c_ulong(0))
        err = ct.get_errno()
        if pid == 0:
            api.PyOS_AfterFork_Child()
            return 0
        api.PyOS_AfterFork_Parent()
        if pid < 0:
            raise OSError(err, "clone: %s" % os.strerror(err))
        return pid

    def mount(self, src, dst, fstype, flags, data):
        enc = lambda v: v.encode() if v is not None else None
        self.check(self.libc.mount(enc(src), enc(dst), enc(fstype), self.ct.c_ulong(flags), enc(data)), "mount " + dst)

    def prctl(self, what, *args):
        self.check(self.libc.prctl(*[self.ct.c_ulong(a) for a in args]), what)


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


def _drop_capabilities(sc):
    # jail/caps.cpp's drop_all_capabilities: the bounding set (CAP_SETPCAP is
    # still ours), the ambient set, the securebits locked, then nothing left.
    # Every one this kernel has: the first it does not know is EINVAL (the
    # jail's /proc has no /proc/sys/kernel/cap_last_cap to ask).
    ct = sc.ct
    for cap in range(64):
        if sc.libc.prctl(ct.c_ulong(24), ct.c_ulong(cap), ct.c_ulong(0), ct.c_ulong(0), ct.c_ulong(0)) < 0:
            if ct.get_errno() == 22:
                break
            sc.check(-1, "drop bounding capability %d" % cap)
    sc.prctl("clear ambient capabilities", 47, 4, 0, 0, 0)
    sc.prctl("PR_SET_SECUREBITS", 28, 1 | 2 | 4 | 8 | 32 | 64 | 128, 0, 0, 0)
    header = ct.create_string_buffer(_std("struct").pack("=Ii", 0x20080522, 0))
    data = ct.create_string_buffer(24)
    sc.call("capset", 126, header, data)


def _task_init(sc, report, sync, req, cgroup_limit):
    """PID 1 of the task's namespace: says hello (the kernel adds its pid as
    the server sees it), waits to be put in the task's cgroup, mounts the
    task's /proc, starts the program, then only reaps, as jail/init.cpp does."""
    sock = _std("socket").socket(fileno=report)
    sock.send(_wire(_HELLO))
    if os.read(sync, 1) != b"2":
        os._exit(125)
    os.close(sync)
    # Re-rooted now that the server has put it in the task's cgroup.
    sc.unshare(_CLONE_NEWCGROUP)
    if cgroup_limit is not None:
        os.write(cgroup_limit, b"0")
        os.close(cgroup_limit)
    proc = req.get("proc")
    if proc:
        # Over the template's, not in its place: the kernel mounts a new proc
        # in a user namespace only where one is already visible. The one below
        # shows the template's PID namespace and is out of reach: nothing in
        # the task can unmount what covers it.
        sc.mount("proc", proc, "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "subset=pid" if req.get("proc_pid") else None)
    if req.get("proxy_port"):
        # Made here, in the task's netns; served by the supervisor, outside it.
        socket = _std("socket")
        l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(("127.0.0.1", req["proxy_port"]))
        l.listen(128)
        l.setblocking(False)
        _report(sock, _PROXY_LISTENER, fds=[l.fileno()])
        l.close()
    # The last step that needed a capability: the program starts with none.
    _drop_capabilities(sc)
    program = os.fork()
    if program == 0:
        return sock
    sc.prctl("PR_SET_DUMPABLE", 4, 0, 0, 0, 0)
    os.closerange(0, report)
    os.closerange(report + 1, 1 << 16)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)

    def forward(sig, frame):
        try:
            os.kill(program, sig)
        except OSError:
            pass

    signal = _signal
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    status = 0
    done = False
    while True:
        try:
            pid, st = os.waitpid(-1, 0x40000000)  # __WALL
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == program:
            status, done = st, True
        if done:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
    ru = _std("resource").getrusage(_std("resource").RUSAGE_CHILDREN)
    usage = (int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6), ru.ru_maxrss)
    try:
        sock.send(_wire(_EXIT, status=status, usage=usage))
    except OSError:
        pass
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if status else 0)


def _limit_task_namespace(sc, where, sysctls):
    """The fork's own user namespace's limits and quotas, as the supervisor
    worked them out (jail/sysctls.hpp, fork_sysctls). /proc/sys/user shows
    the writer's user namespace, and the template's /proc has no /proc/sys:
    a proc of this fork's own, over `where` for the moment, is the way in.
    Returns max_cgroup_namespaces open, for _task_init to zero once the init
    has made the cgroup namespace it needs."""
    sc.mount("proc", where, "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
    try:
        for name, value in sysctls:
            try:
                fd = os.open("%s/sys/user/%s" % (where, name), os.O_WRONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # not on this kernel
            try:
                os.write(fd, str(value).encode())
            finally:
                os.close(fd)
        return os.open("%s/sys/user/max_cgroup_namespaces" % where, os.O_WRONLY | os.O_CLOEXEC)
    finally:
        sc.check(sc.libc.umount2(where.encode(), 2), "umount " + where)  # MNT_DETACH


def _become_task(sc, req, fds, uid, gid, ruleset):
    """In a fork of the template: the task's jail, made around this process.
    Returns in the task's program (PID 2 of its namespace), its filter in.
    `ruleset`: the task's exec rules, made by the template (None: make them
    here, if there are any)."""
    report, sync, filt, out, err, control = fds
    # A user namespace of the task's own first, its other namespaces in it:
    # the capabilities that make them count there only (the template has
    # none), and so does the per-user process count (RLIMIT_NPROC) that jails
    # forked from one template would otherwise share. Its namespace limits
    # and quotas are its own (_limit_task_namespace), under the template
    # jail's (jail/sysctls.hpp).
    # This process is PID 1 of them all (Sys.clone_task); it maps its own ids.
    for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)), ("gid_map", "%d %d 1" % (gid, gid))):
        fd = os.open("/proc/self/" + name, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    sc.mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    # Somewhere to mount a proc for a moment: the task's /proc, or its scratch.
    where = req.get("proc") or next((t[0] for t in req.get("tmpfs", ())), None)
    cgroup_limit = _limit_task_namespace(sc, where, req.get("sysctls", ())) if where else None
    # The task's own scratch, /dev/pts and (in its init) /proc, each over the
    # template's: what came from the template's mount namespace is locked in
    # place there, hidden under the task's, and nothing in it was the task's.
    for path, size, mode, noexec in req.get("tmpfs", ()):
        sc.mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV | (_MS_NOEXEC if noexec else 0), "mode=%o,size=%d" % (mode, size))
    for path in req.get("devpts", ()):
        sc.mount("devpts", path, "devpts", _MS_NOSUID | _MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    host = req.get("hostname", "")
    sc.check(sc.libc.sethostname(host.encode(), len(host.encode())), "sethostname")
    socket = _std("socket")
    if req.get("loopback"):
        fcntl = _std("fcntl")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            ifr = bytearray(_std("struct").pack("16sH22x", b"lo", 0))
            fcntl.ioctl(s, 0x8913, ifr)  # SIOCGIFFLAGS
            flags, = _std("struct").unpack_from("H", ifr, 16)
            fcntl.ioctl(s, 0x8914, _std("struct").pack("16sH22x", b"lo", flags | 1))  # SIOCSIFFLAGS: IFF_UP
    rsock = _task_init(sc, report, sync, req, cgroup_limit)
    # The program: jail/program.cpp's last steps, up to where it would execve.
    # Its exec rules first, while the template's ruleset is where it was.
    sc.prctl("PR_SET_NO_NEW_PRIVS", 38, 1, 0, 0, 0)
    if ruleset is None and req.get("exec_rules") is not None:
        ruleset = _exec_ruleset(sc, req["exec_rules"], req["program"])
    if ruleset is not None:
        sc.call("landlock_restrict_self", 446, ruleset, 0)
        os.close(ruleset)
    # Through fds above 10 first, so that no move lands on another.
    fcntl = _std("fcntl")
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) if fd >= 0 else -1 for fd in (out, err, report, filt, control)]
    for fd, new in ((1, high[0]), (2, high[1]), (3, high[2]), (4, high[3]), (5, high[4])):
        if new >= 0:
            os.dup2(new, fd, inheritable=fd not in (3, 4))
    os.closerange(6, 1 << 16)
    rsock.detach()
    _signal.pthread_sigmask(_signal.SIG_SETMASK, set())
    os.setsid()
    os.umask(0o022)
    os.chdir(req["cwd"])
    if req.get("cpus") and hasattr(os, "sched_setaffinity"):
        ids = sorted(os.sched_getaffinity(0))
        want = -(-req["cpus"] // 1)
        if ids and want < len(ids):
            os.sched_setaffinity(0, ids[: int(want)])
    n = _std("struct").unpack("=I", os.read(4, 4))[0]
    insns = b""
    while len(insns) < n * 8:
        chunk = os.read(4, n * 8 - len(insns))
        if not chunk:
            raise OSError("seccomp filter from the supervisor: the supervisor sent none")
        insns += chunk
    os.close(4)
    resource = _std("resource")
    for res, soft, hard in req.get("rlimits", ()):
        # Never above a hard limit the template already has (-1: none).
        cur = resource.getrlimit(res)[1]
        if cur != -1 and (hard == -1 or hard > cur):
            hard = cur
        if hard != -1 and (soft == -1 or soft > hard):
            soft = hard
        resource.setrlimit(res, (soft, hard))
    rs = socket.socket(fileno=3)
    listener = None
    if n:
        ct = sc.ct
        buf = ct.create_string_buffer(insns, len(insns))
        prog = ct.create_string_buffer(_std("struct").pack("=H6xQ", n, ct.addressof(buf)))
        listener = sc.call("seccomp", 317, 1, 1 << 3, prog)
    _report(rs, _EXEC_READY, fds=[listener] if listener is not None else ())
    rs.close()
    if listener is not None:
        os.close(listener)
    # Seeded state that a fork would share: every task draws its own.
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


def _template(mode):
    global _fd, _ctl_in
    # What a jail that is not forked has loaded: the preloads and the
    # runner's own. Whatever the template imports beyond it is unloaded in
    # each task, so that a task's own module of that name is the one it gets.
    loaded = set(sys.modules)
    sc = _Sys()
    socket = _std("socket")
    for m in ("struct", "time", "resource", "fcntl", "stat", "glob"):
        _std(m)
    ctl = socket.socket(fileno=os.dup(_fd))
    # Every object so far into the permanent generation: a fork's collector
    # then never walks (and so never copies) the template's pages.
    import gc

    gc.collect()
    gc.freeze()
    _send({"ready": True})
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 6)
        except InterruptedError:
            continue
        if not data:
            os._exit(0)
        if len(fds) != 6:
            for fd in fds:
                os.close(fd)
            continue
        req = _loads(data.decode())
        uid, gid = os.getuid(), os.getgid()  # as the parent namespace sees them
        try:
            ruleset = _template_ruleset(sc, req)
            pid = sc.clone_task()
        except OSError as e:
            try:
                _report(socket.socket(fileno=os.dup(fds[0])), _SETUP_ERROR, "template fork: %s" % (e,))
            except OSError:
                pass
            pid = -1
        if pid == 0:
            try:
                ctl.detach()
                _become_task(sc, req, fds, uid, gid, ruleset)
            except BaseException as e:
                # On the report socket, wherever this fork had moved it to.
                for fd in (fds[0], 3):
                    try:
                        _report(socket.socket(fileno=os.dup(fd)), _SETUP_ERROR, "template fork: %s" % (e,))
                        break
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
        for fd in fds:
            os.close(fd)


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
    global _mode
    if _mode.startswith("template:"):
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
