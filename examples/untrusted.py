"""A stand-in for code nobody reviewed: it goes looking for what it should not
have, and says what it found. Run it bare and under stockade to compare."""
import glob
import os
import socket

def attempt(what, fn):
    try:
        print(f"{what:45} {fn()}")
    except Exception as e:
        print(f"{what:45} blocked ({type(e).__name__})")

home = os.path.expanduser("~")
attempt("secret in the environment", lambda: os.environ.get("STOCKADE_DEMO_SECRET", "not there"))
attempt("SSH keys in ~/.ssh", lambda: glob.glob("/root/.ssh/*") + glob.glob("/home/*/.ssh/*") or "none found")
attempt("/etc/shadow", lambda: open("/etc/shadow").readline()[:20] + "...")
attempt("files in /", lambda: " ".join(sorted(os.listdir("/"))))
attempt("processes visible", lambda: len([p for p in os.listdir("/proc") if p.isdigit()]))
attempt("network interfaces", lambda: [n for _, n in socket.if_nameindex()])
attempt("connect to 127.0.0.1:22 on the host", lambda: socket.create_connection(("127.0.0.1", 22), 2) and "connected")
def write_usr():
    probe = "/usr/stockade-demo-probe"
    open(probe, "w").close()
    os.unlink(probe)  # outside the jail this really wrote to the host; undo it
    return "writable"

attempt("write into /usr", write_usr)
attempt("running as uid", lambda: os.getuid())
