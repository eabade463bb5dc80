#!/bin/sh
# The cgroup v2 tests: tests/integration/test_limits.py (and the seccomp ABI
# probes, on a kernel with ia32 emulation) inside a throwaway VM whose kernel
# has a pure cgroup v2 hierarchy, as root and as uid 65534 on a delegated cgroup.
# usage: run.sh STOCKADE TRY_SYSCALL      (from CTest; skips without ../shared)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
vm="$top/../shared/tools/run-in-vm"
if [ ! -x "$vm" ]; then
  echo "SKIP: $vm not found (the VM tool lives in ../shared, beside the project)"
  exit 77
fi
cd "$top"
exec "$vm" --timeout 1200 --mem 2G -- /bin/sh "$here/inside.sh" "$1" "$2"
