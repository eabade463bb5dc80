#!/bin/sh
# Runs inside the VM, as root, in the root cgroup of a pure v2 hierarchy.
set -u
bin=$1 try=$2
for f in "$bin" "$try"; do [ -x "$f" ] || { echo "inside.sh: $f is not visible in the guest"; exit 1; }; done
cd "$(dirname "$0")/../integration"
status=0
if ! grep -q "^0::/$" /proc/self/cgroup || [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
  echo "not a pure cgroup v2 guest"; exit 1
fi
echo "== cgroup v2, as root"
STOCKADE_BIN=$bin STOCKADE_TEST_AS=root STOCKADE_TRY_SYSCALL=$try STOCKADE_EXPECT_CGROUP=v2 \
  /usr/bin/python3 test_limits.py || status=1
STOCKADE_BIN=$bin STOCKADE_TEST_AS=root STOCKADE_TRY_SYSCALL=$try /usr/bin/python3 test_seccomp.py || status=1
# serve: many jails' cgroups from one process, none left after a drain, and the CPU share of
# jails warming ahead.
# unittest's -k takes one pattern each, matched as a substring of the name,
# and (python 3.11) passes when nothing matched: the count that ran is checked.
SERVE_TESTS="-k fresh_jail -k sigterm_drains -k session_limits -k jails_warming_ahead"
# and jails forked from a template: each moved into a cgroup of its own.
TEMPLATE_TESTS="-k jail_of_its_own -k signal_trace_or_reach"
ran() {  # N COMMAND...: COMMAND passes, having run exactly N tests
  n=$1; shift
  log=$(mktemp)
  "$@" >"$log" 2>&1; rc=$?
  cat "$log"
  grep -Eq "^Ran $n tests? in" "$log" || { echo "inside.sh: expected $n tests to run: $*"; rc=1; }
  rm -f "$log"
  return $rc
}
ran 4 env STOCKADE_BIN=$bin STOCKADE_TEST_AS=root STOCKADE_EXPECT_CGROUP=v2 \
  /usr/bin/python3 test_serve.py -v $SERVE_TESTS || status=1
ran 2 env STOCKADE_BIN=$bin STOCKADE_TEST_AS=root STOCKADE_EXPECT_CGROUP=v2 \
  /usr/bin/python3 test_templates.py -v $TEMPLATE_TESTS || status=1

echo "== cgroup v2, as uid 65534 on a delegated cgroup"
# Delegation as systemd does it: the subtree's directory and its interface
# files belong to the user; each run gets a leaf of its own (harness.py).
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/deleg
echo "+memory +pids +cpu" > /sys/fs/cgroup/deleg/cgroup.subtree_control
chown 65534:65534 /sys/fs/cgroup/deleg /sys/fs/cgroup/deleg/cgroup.procs \
  /sys/fs/cgroup/deleg/cgroup.subtree_control /sys/fs/cgroup/deleg/cgroup.threads
STOCKADE_BIN=$bin STOCKADE_TEST_AS=user STOCKADE_TRY_SYSCALL=$try STOCKADE_EXPECT_CGROUP=v2 \
  STOCKADE_TEST_CGROUP=/sys/fs/cgroup/deleg /usr/bin/python3 test_limits.py || status=1
ran 4 env STOCKADE_BIN=$bin STOCKADE_TEST_AS=user STOCKADE_EXPECT_CGROUP=v2 STOCKADE_TEST_CGROUP=/sys/fs/cgroup/deleg \
  /usr/bin/python3 test_serve.py -v $SERVE_TESTS || status=1
ran 2 env STOCKADE_BIN=$bin STOCKADE_TEST_AS=user STOCKADE_EXPECT_CGROUP=v2 STOCKADE_TEST_CGROUP=/sys/fs/cgroup/deleg \
  /usr/bin/python3 test_templates.py -v $TEMPLATE_TESTS || status=1
exit $status
