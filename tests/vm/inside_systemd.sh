#!/bin/sh
# Runs inside the systemd VM, as root (see systemd.sh).
set -u
deb=$1
status=0
fail() { echo "FAIL: $*"; status=1; }
field() { /usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

echo "== the .deb on this root"
dpkg -i "$deb" >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i"; }
[ -x /usr/bin/stockade ] || fail "/usr/bin/stockade not installed"
out=$(/usr/bin/stockade run -q -c 'import os; print("jailed", os.getuid())') || fail "stockade run as root"
[ "$out" = "jailed 1000" ] || fail "stockade run printed: $out"
/usr/bin/stockade doctor >/tmp/doctor-root.txt 2>&1
rc=$?
[ $rc -le 1 ] || { cat /tmp/doctor-root.txt; fail "doctor as root: exit $rc"; }
man -w stockade-serve >/dev/null 2>&1 || [ -f /usr/share/man/man1/stockade-serve.1.gz ] || fail "man page"

echo "== uid 65534 with a user manager: a delegated scope over D-Bus"
systemctl start user@65534.service || fail "start user@65534"
as_nobody() { runuser -u nobody -- env XDG_RUNTIME_DIR=/run/user/65534 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/65534/bus "$@"; }
cd /tmp
as_nobody /usr/bin/stockade run --result /tmp/r1.json -c 'print("hi")' >/tmp/r1.out 2>&1 || { cat /tmp/r1.out; fail "run as 65534"; }
[ "$(field /tmp/r1.json 'd["cgroup"]')" = v2 ] || { cat /tmp/r1.out /tmp/r1.json; fail "as 65534: no cgroup v2"; }
[ "$(field /tmp/r1.json '[x["limit"] for x in d["degraded"] if x["limit"] != "memfd_noexec"]')" = "[]" ] || fail "as 65534: degraded"
grep -q warning /tmp/r1.out && fail "as 65534: a warning was printed"
as_nobody /usr/bin/stockade run --memory 64M --result /tmp/r2.json -c 'x = bytearray(300 << 20)' >/dev/null 2>&1
[ "$(field /tmp/r2.json 'd["status"]')" = oom ] || { cat /tmp/r2.json; fail "as 65534: 64M did not hold"; }
as_nobody /usr/bin/stockade doctor >/tmp/doctor-65534.txt 2>&1 || { cat /tmp/doctor-65534.txt; fail "doctor as 65534 with a user manager: exit $?"; }

echo "== serve as a socket-activated user service (Delegate=yes)"
as_nobody systemctl --user start stockade-serve.socket || fail "start stockade-serve.socket"
cat > /tmp/client.py <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(120); s.connect("/run/user/65534/stockade/serve.sock")
s.sendall(b'{"id": 1, "op": "run", "code": "print(6 * 7)"}\n')
a = json.loads(s.makefile().readline())
print(a.get("stdout", "").strip(), a.get("cgroup"), [d["limit"] for d in a.get("degraded", []) if d["limit"] != "memfd_noexec"])
PY
out=$(runuser -u nobody -- /usr/bin/python3 /tmp/client.py 2>&1)
[ "$out" = "42 v2 []" ] || fail "serve through the socket unit: $out"
as_nobody systemctl --user stop stockade-serve.service stockade-serve.socket

echo "== uid 65534 without a user manager: rlimits, and doctor says how to get one"
systemctl stop user@65534.service
runuser -u nobody -- env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS /usr/bin/stockade run --result /tmp/r3.json -c 'pass' >/tmp/r3.out 2>&1
[ "$(field /tmp/r3.json 'd["cgroup"]')" = None ] || fail "without a user manager: a cgroup appeared"
grep -q "without a cgroup" /tmp/r3.out || fail "without a user manager: no warning"
runuser -u nobody -- env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS /usr/bin/stockade doctor >/tmp/doctor-nouser.txt 2>&1
rc=$?
[ $rc = 1 ] || fail "doctor without a user manager: exit $rc"
grep -q "loginctl enable-linger" /tmp/doctor-nouser.txt || { cat /tmp/doctor-nouser.txt; fail "doctor does not say loginctl enable-linger"; }
[ $status = 0 ] && echo "all systemd checks passed"
exit $status
