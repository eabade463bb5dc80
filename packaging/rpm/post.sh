# Loads stockade's AppArmor profile where AppArmor is on; elsewhere, nothing.
if command -v apparmor_parser >/dev/null 2>&1 && [ -d /sys/kernel/security/apparmor ]; then
  apparmor_parser -r -T -W /etc/apparmor.d/stockade 2>/dev/null || true
fi
