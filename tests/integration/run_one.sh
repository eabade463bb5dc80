#!/bin/sh
# CTest entry: run one integration file as root or as an unprivileged user.
# usage: run_one.sh BIN root|user FILE.py [TRY_SYSCALL]
export STOCKADE_BIN="$1" STOCKADE_TEST_AS="$2" STOCKADE_TRY_SYSCALL="${4:-}"
exec /usr/bin/python3 "$3" -v
