"""The caller's terminal. The jail gets a pseudo-terminal of its own, relayed
by the supervisor; the caller's tty never enters the jail. Each attack runs
first as a plain process holding the caller's terminal (what the jail had
before), then through stockade."""
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

from harness import JailTest, main

TIOCGEXCL = 0x80045440


def read_until(fd, needle, timeout=10.0):
    """What fd gives until needle appears (None: until it goes quiet, EOF or timeout)."""
    out = b""
    end = time.time() + timeout
    while (needle is None or needle.encode() not in out) and time.time() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def drain(fd, seconds):
    return read_until(fd, None, seconds)


class TerminalTest(JailTest):
    def on_pty(self, argv, stdin_tty=True):
        """Runs argv as a session leader whose fds 0-2 are a fresh pty (its controlling terminal)."""
        master, slave = pty.openpty()

        def ctty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        p = subprocess.Popen(self.prefix() + argv, stdin=slave if stdin_tty else subprocess.DEVNULL, stdout=slave,
                             stderr=slave, env=self.env({"TERM": "xterm"}), cwd=self.ws, start_new_session=True,
                             preexec_fn=ctty if stdin_tty else None)
        self.procs.append(p)
        return p, master, slave

    # The jail's own terminal tampers with its settings; the caller's must come back untouched.
    TAMPER = ("import fcntl, os, termios\n"
              "fd = 0\n"
              "a = termios.tcgetattr(fd); a[3] &= ~termios.ECHO; termios.tcsetattr(fd, termios.TCSANOW, a)\n"
              "fcntl.ioctl(fd, termios.TIOCEXCL)\n"
              "print('tampered', flush=True)\n")

    def test_caller_terminal_settings_survive(self):
        for jailed in (False, True):
            with self.subTest(jailed=jailed):
                script = self.write("tamper.py", self.TAMPER)
                argv = [self.bin, "run", script] if jailed else ["/usr/bin/python3", script]
                p, master, slave = self.on_pty(argv)
                before = termios.tcgetattr(slave)
                out = read_until(master, "tampered")
                p.wait(timeout=30)
                drain(master, 0.2)
                after = termios.tcgetattr(slave)
                excl = struct.unpack("i", fcntl.ioctl(slave, TIOCGEXCL, b"\0" * 4))[0]
                os.close(master)
                os.close(slave)
                self.assertIn("tampered", out)
                if jailed:
                    self.assertEqual(p.returncode, 0, out)
                    self.assertEqual(after, before, "stockade left the caller's terminal changed")
                    self.assertEqual(excl, 0, "stockade left TIOCEXCL on the caller's terminal")
                else:
                    # Unprotected: a process holding the caller's terminal changes it for good.
                    self.assertNotEqual(after[3] & termios.ECHO, before[3] & termios.ECHO)
                    self.assertEqual(excl, 1)

    def test_window_size_and_its_own_pty(self):
        code = ("import os, pty\n"
                "print('size', os.get_terminal_size(0), flush=True)\n"
                "m, s = pty.openpty(); os.write(m, b'x\\n'); print('openpty', os.read(s, 10), flush=True)\n"
                "print('tty', os.ttyname(0), flush=True)\n")
        script = self.write("size.py", code)
        p, master, slave = self.on_pty([self.bin, "run", script])
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        out = read_until(master, "tty /dev/pts/")
        p.wait(timeout=30)
        os.close(master)
        os.close(slave)
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("columns=111, lines=33", out)
        self.assertIn("openpty b'x", out)
        # The jail's devpts is its own: its first pty is number 0, whatever the host's is.
        self.assertIn("tty /dev/pts/0", out)

    def test_run_without_a_script_is_a_repl_on_a_terminal(self):
        p, master, slave = self.on_pty([self.bin, "run"])
        self.assertIn(">>> ", read_until(master, ">>> ", 30))
        os.write(master, b"import os; print(6 * 7, os.getuid(), os.path.exists('/etc/shadow'))\n")
        out = read_until(master, "42 ")
        out += read_until(master, ">>> ")
        os.write(master, b"exit()\n")
        p.wait(timeout=30)
        os.close(master)
        os.close(slave)
        self.assertIn("42 1000 False", out)  # the jail's user, none of the host's files
        self.assertEqual(p.returncode, 0)
        # Without a terminal there is nothing to talk to: one clear line, exit 125.
        r = self.stockade("run", input="")
        self.assertEqual(r.returncode, 125)
        self.assertIn("on a terminal", r.stderr)

    def test_output_cap_applies_on_a_terminal(self):
        result = self.path("result.json")
        p, master, slave = self.on_pty([self.bin, "run", "--output-limit", "1000", "--result", result, "-c",
                                        "print('x' * 20000, flush=True)"])
        got = drain(master, 5)
        p.wait(timeout=30)
        os.close(master)
        os.close(slave)
        with open(result) as f:
            doc = json.load(f)
        self.assertTrue(doc["truncated"])
        self.assertGreaterEqual(doc["stdout_bytes"], 20000)
        self.assertLess(got.count("x"), 1100)
        self.assertEqual(doc["degraded"] and [d for d in doc["degraded"] if d["limit"] == "output"], [])

    # What a jail would say to the caller's terminal: read the clipboard
    # (OSC 52 query) and set it (paste-jacking), set the title, ask the
    # terminal to identify itself and report the cursor (the answers arrive as
    # input), turn on mouse reporting, a DCS request, ENQ, and an 8-bit CSI.
    # Colour and cursor movement are ordinary output.
    HOSTILE = ("import sys\n"
               "w = sys.stdout.write\n"
               "w('\\x1b]52;c;?\\x07\\x1b]52;c;ZWNobyBwd25lZA==\\x1b\\\\\\x1b]0;evil-title\\x07')\n"
               "w('\\x1b[c\\x1b[>c\\x1b[6n\\x1b[>q\\x1b[21t\\x1b[?1000h\\x1bP+q544e\\x1b\\\\\\x05\\u009b6n')\n"
               "w('\\x1b[31mRED\\x1b[0m \\x1b[2;5HMOVED\\n')\n"
               "sys.stdout.flush()\n")
    BAD = ["\x1b]52", "\x1b]0;", "\x1b[c", "\x1b[>c", "\x1b[6n", "\x1b[>q", "\x1b[21t", "\x1b[?1000h", "\x1bP",
           "\x05", "\u009b"]

    def test_escape_sequences_that_talk_to_the_terminal_are_dropped(self):
        # Without the jail: a plain process on the caller's terminal says it all.
        p, master, slave = self.on_pty(["/usr/bin/python3", "-c", self.HOSTILE])
        got = drain(master, 3)
        p.wait(timeout=30)
        for seq in self.BAD:
            self.assertIn(seq, got, f"the plain process should have sent {seq!r}")
        os.close(master)
        os.close(slave)
        # Through stockade: only colour and cursor movement arrive.
        p, master, slave = self.on_pty([self.bin, "run", "-q", "-c", self.HOSTILE])
        got = drain(master, 5)
        self.assertEqual(p.wait(timeout=30), 0)
        os.close(master)
        os.close(slave)
        for seq in self.BAD:
            self.assertNotIn(seq, got)
        self.assertIn("\x1b[31mRED\x1b[0m", got)
        self.assertIn("\x1b[2;5HMOVED", got)
        # --raw-terminal is the caller's own choice: everything passes.
        p, master, slave = self.on_pty([self.bin, "run", "-q", "--raw-terminal", "-c", self.HOSTILE])
        got = drain(master, 5)
        p.wait(timeout=30)
        os.close(master)
        os.close(slave)
        self.assertIn("\x1b]52;c;ZWNobyBwd25lZA==", got)


class JobControlTest(JailTest):
    """A real interactive bash on a pty, with job control, running stockade."""

    def setUp(self):
        super().setUp()
        self.master, slave = pty.openpty()

        def ctty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.bash = subprocess.Popen(self.prefix() + ["bash", "--norc", "--noprofile", "-i"], stdin=slave,
                                     stdout=slave, stderr=slave, cwd=self.ws, start_new_session=True,
                                     preexec_fn=ctty, env=self.env({"PS1": "PROMPT> ", "TERM": "dumb"}))
        self.procs.append(self.bash)
        os.close(slave)
        read_until(self.master, "PROMPT> ")

    def tearDown(self):
        try:
            os.write(self.master, b"exit\r")
        except OSError:
            pass
        os.close(self.master)
        super().tearDown()

    def type(self, text):
        os.write(self.master, text.encode())

    # Reads whatever arrives on its stdin for 3 s and reports it in a file.
    READER = ("import os, select, time\n"
              "got = b''\n"
              "end = time.time() + 3\n"
              "while time.time() < end:\n"
              "    r, _, _ = select.select([0], [], [], 0.1)\n"
              "    if r:\n"
              "        try:\n"
              "            got += os.read(0, 100)\n"
              "        except OSError:\n"
              "            break\n"
              "print('GOT', got, flush=True)\n")

    def test_background_jail_cannot_read_what_is_typed(self):
        reader = self.write("reader.py", self.READER)
        for jailed in (False, True):
            with self.subTest(jailed=jailed):
                out = self.path(f"reader-{jailed}.txt")
                if jailed:
                    cmd = f"{self.bin} run -q {reader} > {out} 2>&1 &\r"
                else:
                    # What the jail was before: another session holding the caller's terminal.
                    cmd = f"setsid python3 {reader} > {out} 2>&1 &\r"
                self.type(cmd)
                time.sleep(1.0)
                for i in range(8):
                    self.type(f"echo typed-secret-{i}\r")
                    time.sleep(0.15)
                time.sleep(2.5)
                drain(self.master, 0.5)
                self.type("wait\r")
                read_until(self.master, "PROMPT> ", 10)
                with open(out) as f:
                    got = f.read()
                if jailed:
                    self.assertIn("GOT b''", got)
                    self.assertNotIn("typed-secret", got)
                else:
                    self.assertIn("typed-secret", got, "the unprotected reader should have seen the typing")

    def test_ctrl_z_freezes_the_jail_and_fg_resumes_it(self):
        code = self.write("count.py", "import time\nfor i in range(60):\n    print('tick', i, flush=True)\n"
                                      "    time.sleep(0.1)\nprint('finished', flush=True)\n")
        self.type(f"{self.bin} run --timeout 60s {code}\r")
        read_until(self.master, "tick 3")
        self.type("\x1a")  # Ctrl-Z
        stopped = read_until(self.master, "PROMPT> ", 10)
        self.assertIn("Stopped", stopped)
        drain(self.master, 0.3)
        # The jail's python is frozen too, not running on behind the shell's back.
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
        states = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"/work/count.py" not in f.read():
                        continue
                with open(f"/proc/{pid}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        self.assertTrue(states, "the jail's python was not found")
        self.assertTrue(all(s == "T" for s in states), f"jail processes in states {states}")
        self.type("\r")
        quiet = drain(self.master, 1.0)
        self.assertNotIn("tick", quiet, "the jail kept printing while stopped")
        self.type("fg\r")
        done = read_until(self.master, "finished", 30)
        self.assertIn("finished", done)
        read_until(self.master, "PROMPT> ", 10)


if __name__ == "__main__":
    main()
