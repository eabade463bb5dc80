"""Everyday Python that a default-profile jail must run without a single refused
syscall: numpy, sqlite3, ssl/hashlib, threading, multiprocessing (fork and
spawn), asyncio, subprocess, mmap, tempfile."""
import asyncio
import hashlib
import mmap
import multiprocessing as mp
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading


def square(x):
    return x * x


def check(name, fn):
    fn()
    print("ok", name, flush=True)


def numpy_work():
    import numpy as np
    a = np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000)
    assert abs(float((a @ a.T).trace()) - float((a * a).sum())) < 1e6 * abs(float((a * a).sum())) * 1e-9 + 1
    np.linalg.inv(np.eye(50) * 2.0)


def sqlite_work():
    with tempfile.TemporaryDirectory() as d:
        db = sqlite3.connect(os.path.join(d, "t.db"))
        db.execute("create table t (x integer)")
        db.executemany("insert into t values (?)", [(i,) for i in range(1000)])
        db.commit()
        assert db.execute("select sum(x) from t").fetchone()[0] == 499500
        db.close()
    mem = sqlite3.connect(":memory:")
    assert mem.execute("select 1").fetchone() == (1,)


def ssl_work():
    assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf")
    hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000)
    ctx = ssl.create_default_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    ssl.RAND_bytes(16)


def threading_work():
    out = []
    lock = threading.Lock()

    def worker(i):
        with lock:
            out.append(i)
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(out) == list(range(16))


def mp_work(method):
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        assert pool.map(square, range(10)) == [x * x for x in range(10)]
    q = ctx.Queue()
    p = ctx.Process(target=q.put, args=(42,))
    p.start()
    assert q.get(timeout=30) == 42
    p.join()


def asyncio_work():
    async def main():
        async def echo(reader, writer):
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"ping")
        await w.drain()
        assert await r.read(100) == b"ping"
        w.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)
    asyncio.run(main())


def subprocess_work():
    r = subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True, check=True)
    assert r.stdout == "child\n"
    assert subprocess.run(["/bin/sh", "-c", "exit 3"]).returncode == 3


def mmap_work():
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 8192)
        f.flush()
        m = mmap.mmap(f.fileno(), 0)
        assert m[:4] == b"xxxx"
        m.close()
    anon = mmap.mmap(-1, 1 << 20)
    anon[0:3] = b"abc"
    anon.close()


def tempfile_work():
    with tempfile.NamedTemporaryFile("w+") as f:
        f.write("data")
        f.flush()
        assert open(f.name).read() == "data"
    d = tempfile.mkdtemp()
    os.rmdir(d)


if __name__ == "__main__":
    check("numpy", numpy_work)
    check("sqlite3", sqlite_work)
    check("ssl", ssl_work)
    check("threading", threading_work)
    check("multiprocessing-fork", lambda: mp_work("fork"))
    check("multiprocessing-spawn", lambda: mp_work("spawn"))
    check("asyncio", asyncio_work)
    check("subprocess", subprocess_work)
    check("mmap", mmap_work)
    check("tempfile", tempfile_work)
    print("all ok")
