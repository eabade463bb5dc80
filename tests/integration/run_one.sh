#!/bin/sh
# CTest entry: run one integration file as root or as an unprivileged user.
# usage: run_one.sh BIN root|user FILE.py [TRY_SYSCALL [TWO_JAILS]]
export STOCKADE_BIN="$1" STOCKADE_TEST_AS="$2" STOCKADE_TRY_SYSCALL="${4:-}" STOCKADE_TWO_JAILS="${5:-}"
exec /usr/bin/python3 "$3" -v
