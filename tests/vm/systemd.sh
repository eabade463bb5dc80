#!/bin/sh
# The package and the systemd integration on a real systemd (252, pure cgroup
# v2, D-Bus, logind, user managers), in a throwaway VM: the .deb installed and
# used; uid 65534's limits held through a delegated scope that stockade asks
# its user manager for over D-Bus; serve as a socket-activated user service;
# and without a user manager, the fallback and doctor's fix.
# usage: systemd.sh BUILD_DIR     (from CTest, after packaging.packages; skips without ../shared)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
vm="$top/../shared/tools/run-in-vm"
if [ ! -x "$vm" ]; then
  echo "SKIP: $vm not found (the VM tool lives in ../shared, beside the project)"
  exit 77
fi
build=$(cd "$1" && pwd)
deb=$(ls "$build"/stockade_*_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "no .deb in $build (packaging.packages makes it)"; exit 1; }
cd "$top"
exec "$vm" --systemd --timeout 900 --mem 2G -- /bin/sh "$here/inside_systemd.sh" "$deb"
