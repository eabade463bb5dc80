#!/bin/sh
# stockade in a real Docker engine: Debian's docker.io, a dockerd this test
# starts with its own data root (no iptables, no bridge), and an image made
# from the .deb on a local Debian 12 base (debootstrap, then `docker import`).
# It checks the README's lines as written:
#   - Docker's default seccomp profile: exit 125, and the one line names the fix;
#   - the shipped profile without systempaths=unconfined: the same, for /proc;
#   - the shipped profile with systempaths=unconfined: works, as root and as
#     --user 1000:1000, and doctor agrees with what happens.
# The daemon is stopped (by its pid) and its data removed on every way out.
# usage: docker.sh BUILD_DIR (with the .deb that tests/packaging/packages.sh made)
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
for tool in dockerd debootstrap; do
  if ! command -v $tool >/dev/null; then
    echo "docker.sh: skipped: $tool is not installed (scripts/setup --test installs docker.io and debootstrap)"
    exit 77
  fi
done
[ "$(id -u)" = 0 ] || { echo "docker.sh: skipped: needs root to start a dockerd"; exit 77; }
deb=$(ls "$build"/stockade_*_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "docker.sh: no .deb in $build (packages.sh makes it)"; exit 1; }
docker=/usr/bin/docker  # the daemon's own client (another CLI may be first on PATH)

work=$(mktemp -d /tmp/stockade-docker-XXXXXX)
dpid=
cleanup() {
  if [ -n "$dpid" ]; then
    kill "$dpid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Whatever the daemon left mounted below its own directories.
  grep -o " $work/[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A Debian 12 base with python3, from the mirror apt already uses; kept
# between runs (it only depends on Debian), rebuilt when absent.
cache=/var/cache/stockade-tests/bookworm-python3.tar
if [ ! -s "$cache" ]; then
  mirror=$(grep -rhoE "^(URIs:|deb) +https?://[^ ]+/debian/?( |$)" /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
           | awk '{print $2}' | head -1)
  [ -n "$mirror" ] || { echo "docker.sh: no Debian mirror in apt's sources"; exit 1; }
  echo "docker.sh: debootstrap bookworm (minbase, python3) from apt's mirror"
  debootstrap --variant=minbase --include=python3 bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  mkdir -p "$(dirname "$cache")"
  tar -C "$work/root" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
  rm -rf "$work/root"
fi

dockerd --iptables=false --ip-masq=false --bridge=none --data-root "$work/data" --exec-root "$work/exec" \
  --pidfile "$work/docker.pid" -H "unix://$work/docker.sock" >"$work/dockerd.log" 2>&1 &
dpid=$!
export DOCKER_HOST="unix://$work/docker.sock" DOCKER_BUILDKIT=0
for _ in $(seq 100); do $docker version >/dev/null 2>&1 && break; sleep 0.2; done
$docker version >/dev/null 2>&1 || { tail -20 "$work/dockerd.log"; exit 1; }

$docker import - stockade-test/bookworm <"$cache" >/dev/null
mkdir "$work/ctx"
cp "$deb" "$work/ctx/stockade.deb"
cat >"$work/ctx/stockade-ask.py" <<'PY'
import socket, sys, time
for _ in range(200):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.1)
s.sendall(b'{"id": 1, "op": "run", "code": "print(42)"}\n')
print(s.makefile().readline())
PY
printf 'FROM stockade-test/bookworm\nCOPY stockade.deb stockade-ask.py /tmp/\nRUN dpkg -i /tmp/stockade.deb && mv /tmp/stockade-ask.py /usr/local/bin/ && rm /tmp/stockade.deb\n' \
  >"$work/ctx/Dockerfile"
$docker build -q --network none -t stockade-test/stockade "$work/ctx" >/dev/null
img=stockade-test/stockade
profile=$src/packaging/docker/seccomp.json
fail=0
check() {  # check NAME WANT_STATUS WANT_TEXT -- docker run args...
  name=$1 want=$2 text=$3
  shift 4
  set +e
  out=$($docker run --rm --network none "$@" 2>&1)
  got=$?
  set -e
  [ -z "${STOCKADE_DOCKER_VERBOSE:-}" ] || printf '%s\n' "$out" | sed 's/^/    | /'
  if [ "$got" != "$want" ] || ! printf '%s' "$out" | grep -qF -- "$text"; then
    echo "FAIL: $name: exit $got (want $want), output:"
    printf '%s\n' "$out" | sed 's/^/    /'
    fail=1
  else
    echo "ok: $name"
  fi
}
run='stockade run -c print(42)'
# The README's line, exactly as it stands there (the installed profile path):
check "Docker's default seccomp profile: refused, the fix named" 125 "--security-opt seccomp=" -- $img $run
check "the default profile: doctor fails and names the fix" 2 "--security-opt seccomp=" -- $img stockade doctor
check "the shipped profile alone: refused, systempaths named" 125 "systempaths=unconfined" -- \
  --security-opt seccomp="$profile" $img $run
check "the README's line, as root" 0 "42" -- \
  --security-opt seccomp="$profile" --security-opt systempaths=unconfined $img $run
check "the README's line, as --user 1000:1000" 0 "42" -- \
  --security-opt seccomp="$profile" --security-opt systempaths=unconfined --user 1000:1000 $img $run
check "the README's line: serve answers a task" 0 '"stdout":"42\n"' -- \
  --security-opt seccomp="$profile" --security-opt systempaths=unconfined $img sh -c \
  'stockade serve --pool 1 -q --socket /tmp/s/serve.sock & python3 /usr/local/bin/stockade-ask.py /tmp/s/serve.sock'
# The installed copy of the profile is the one in the tree.
$docker run --rm --network none $img cat /usr/share/stockade/docker-seccomp.json | cmp -s - "$profile" \
  && echo "ok: /usr/share/stockade/docker-seccomp.json is packaging/docker/seccomp.json" \
  || { echo "FAIL: the installed docker-seccomp.json differs"; fail=1; }
[ $fail = 0 ] && echo "docker: all checks passed"
exit $fail
