# On removal (not upgrade: $1 is 0), unload stockade's AppArmor profile.
if [ "$1" = 0 ] && command -v apparmor_parser >/dev/null 2>&1 && [ -d /sys/kernel/security/apparmor ]; then
  apparmor_parser -R /etc/apparmor.d/stockade 2>/dev/null || true
fi
