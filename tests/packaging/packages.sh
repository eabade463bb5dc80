#!/bin/sh
# The .deb and .rpm, built with CPack from this build directory (configured
# with -DCMAKE_INSTALL_PREFIX=/usr by scripts/setup): their contents, and
# lintian on the .deb with no errors. The systemd VM test then installs the
# .deb on a throwaway root and uses it.
# usage: packages.sh BUILD_DIR
set -eu
build=$(cd "$1" && pwd)
cd "$build"
rm -f stockade_*.deb stockade-*.rpm
cpack -G "DEB;RPM" >cpack.log 2>&1 || { tail -30 cpack.log; exit 1; }
deb=$(ls stockade_*_*.deb)
rpm=$(ls stockade-*.rpm)
contents=$(dpkg -c "$deb" | awk '{print $6}')
for f in ./usr/bin/stockade ./usr/share/man/man1/stockade.1.gz ./usr/share/man/man1/stockade-serve.1.gz \
         ./usr/share/man/man1/stockade-mcp.1.gz ./usr/share/man/man5/stockade-profile.5.gz \
         ./usr/share/stockade/profiles/python.toml ./usr/share/bash-completion/completions/stockade \
         ./usr/share/zsh/vendor-completions/_stockade ./usr/share/fish/vendor_completions.d/stockade.fish \
         ./etc/apparmor.d/stockade ./usr/lib/systemd/user/stockade-serve.socket \
         ./usr/lib/systemd/user/stockade-serve.service ./usr/share/doc/stockade/copyright \
         ./usr/share/stockade/docker-seccomp.json; do
  echo "$contents" | grep -qx "$f" || { echo "$deb lacks $f"; exit 1; }
done
rpm -qlp "$rpm" 2>/dev/null | grep -qx /usr/bin/stockade || { echo "$rpm lacks /usr/bin/stockade"; exit 1; }
rpm -qlp "$rpm" 2>/dev/null | grep -qx /etc/apparmor.d/stockade || { echo "$rpm lacks the AppArmor profile"; exit 1; }
# The license (SPDX Apache-2.0) and a real description in both; the AppArmor
# profile is unloaded on removal.
[ "$(rpm -qp --qf '%{LICENSE}' "$rpm" 2>/dev/null)" = Apache-2.0 ] || { echo "$rpm: license is not Apache-2.0"; exit 1; }
rpm -qip "$rpm" 2>/dev/null | grep -q "user, mount, PID, network" || { echo "$rpm: placeholder description"; exit 1; }
rpm -qp --scripts "$rpm" 2>/dev/null | grep -q "apparmor_parser -R" || { echo "$rpm: no AppArmor unload on removal"; exit 1; }
ctl=$(mktemp -d)
dpkg-deb -e "$deb" "$ctl"
grep -q "apparmor_parser -R" "$ctl/prerm" || { echo "$deb: no AppArmor unload on removal"; rm -rf "$ctl"; exit 1; }
rm -rf "$ctl"
dpkg-deb -x "$deb" "$build/deb-root"
grep -q "^License: Apache-2.0" "$build/deb-root/usr/share/doc/stockade/copyright" || { echo "$deb: copyright lacks Apache-2.0"; exit 1; }
rm -rf "$build/deb-root"
# The completions are the CLI's own: every subcommand is offered, and -p
# offers the built-in profiles.
grep -q "strict" "$build/completions/stockade.bash" || { echo "bash completion does not offer the profiles"; exit 1; }
for sub in run exec serve mcp doctor explain; do
  grep -q "$sub" "$build/completions/stockade.bash" || { echo "bash completion lacks $sub"; exit 1; }
done
bash -n "$build/completions/stockade.bash"
if command -v lintian >/dev/null; then
  lintian --no-tag-display-limit "$deb" >lintian.log 2>&1 || true
  if grep -q '^E:' lintian.log; then grep '^E:' lintian.log; exit 1; fi
  echo "lintian: no errors ($(grep -c '^W:' lintian.log) warnings)"
fi
echo "packages: $deb $rpm"
