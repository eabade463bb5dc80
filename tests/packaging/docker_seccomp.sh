#!/bin/sh
# packaging/docker/seccomp.json: it is what tools/docker_seccomp.cpp makes;
# stockade builds its jail under it (enforced as Docker does, by libseccomp);
# and under the same profile without the namespace calls (Docker's default
# for a container without CAP_SYS_ADMIN), stockade fails cleanly: exit 125,
# one line that says why, and doctor names the fix.
# usage: docker_seccomp.sh GENERATOR SECCOMP_JSON_HELPER STOCKADE
set -eu
gen=$1 helper=$2 bin=$3
top=$(cd "$(dirname "$0")/../.." && pwd)
shipped=$top/packaging/docker/seccomp.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$gen" > "$tmp/seccomp.json"
cmp -s "$tmp/seccomp.json" "$shipped" || { echo "packaging/docker/seccomp.json is stale: regenerate it with $gen"; exit 1; }
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$shipped"

out=$("$helper" "$shipped" -- "$bin" run -q -c 'import os; print("jailed", os.getuid())')
[ "$out" = "jailed 1000" ] || { echo "under the shipped profile: $out"; exit 1; }
echo "ok: stockade runs under packaging/docker/seccomp.json"

set +e
"$helper" "$shipped" --without unshare,clone3,setns,mount,umount2,pivot_root,open_tree,move_mount \
  -- "$bin" run -q -c 'print("escaped")' >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 125 ] || { echo "without the namespace calls: exit $rc, expected 125"; cat "$tmp/out" "$tmp/err"; exit 1; }
[ "$(grep -c . "$tmp/err")" = 1 ] || { echo "expected one line:"; cat "$tmp/err"; exit 1; }
grep -q "clone3" "$tmp/err" || { echo "the line does not say what failed:"; cat "$tmp/err"; exit 1; }
! grep -q escaped "$tmp/out"
echo "ok: without them stockade fails cleanly: $(cat "$tmp/err")"
