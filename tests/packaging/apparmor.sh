#!/bin/sh
# The AppArmor profile (packaging/apparmor/stockade) compiles, without being
# loaded. Debian 12's apparmor_parser (3.0) predates AppArmor 4's "userns"
# rule and its abi/4.0, so those two lines are checked as text and the rest
# is compiled; with a parser of 4.0 or later, the whole file is compiled.
# usage: apparmor.sh        (skips, 77, without apparmor_parser)
set -eu
profile=$(cd "$(dirname "$0")/../.." && pwd)/packaging/apparmor/stockade
command -v apparmor_parser >/dev/null || { echo "SKIP: no apparmor_parser (apt-get install apparmor)"; exit 77; }
grep -qx 'abi <abi/4.0>,' "$profile" || { echo "the profile does not declare abi 4.0"; exit 1; }
grep -qx '  userns,' "$profile" || { echo "the profile does not grant userns"; exit 1; }
grep -q '^profile stockade /usr/bin/stockade ' "$profile" || { echo "the profile is not attached to /usr/bin/stockade"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=$(apparmor_parser --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "${version:-0}" -ge 4 ]; then
  cp "$profile" "$tmp/stockade"
else
  grep -v -e '^abi <abi/4.0>,$' -e '^  userns,$' "$profile" > "$tmp/stockade"
fi
apparmor_parser -Q -K --skip-cache -o "$tmp/out.bin" "$tmp/stockade" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
[ -s "$tmp/out.bin" ] || { echo "apparmor_parser wrote no policy"; exit 1; }
echo "apparmor: the profile compiles (parser $(apparmor_parser --version | head -1))"
