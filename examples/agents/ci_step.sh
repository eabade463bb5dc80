#!/bin/sh
# A CI step: run a script nobody reviewed in the jail, and fail the job on any
# status but "ok" (a crash, a timeout, an OOM, a refused syscall that killed
# it...). The JSON result is kept as an artifact.
# The strict profile needs a cgroup for its limits and fails closed without
# one; STOCKADE_PROFILE=python runs with rlimits standing in.
#   usage: ci_step.sh SCRIPT.py [RESULT.json]
set -eu
script=$1
result=${2:-stockade-result.json}
stockade=${STOCKADE_BIN:-stockade}
"$stockade" run -p "${STOCKADE_PROFILE:-strict}" --timeout 60s --result "$result" "$script" || true
status=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"])' "$result")
echo "stockade: $script: $status"
[ "$status" = ok ]
