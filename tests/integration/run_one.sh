#!/bin/sh
# CTest entry: run one integration file as root or as an unprivileged user.
# usage: run_one.sh BIN root|user FILE.py
export STOCKADE_BIN="$1" STOCKADE_TEST_AS="$2"
exec /usr/bin/python3 "$3" -v
