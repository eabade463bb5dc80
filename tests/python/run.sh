#!/bin/sh
# CTest entry: the Python client's tests and the agent recipes, with pytest,
# as root or as uid 65534. The clone may sit below a directory that uid 65534
# cannot enter, so the package, the recipes and the binary are copied to a
# workspace of their own first.
# usage: run.sh BIN root|user
set -eu
bin=$1 as=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
ws=$(mktemp -d /tmp/stockade-pytest-XXXXXX)
trap 'rm -rf "$ws"' EXIT
chmod 755 "$ws"
cp -r "$src/python" "$ws/python"
mkdir -p "$ws/examples"
cp -r "$src/examples/agents" "$ws/examples/agents"
cp "$bin" "$ws/stockade"
chmod -R a+rX "$ws"
cd "$ws/python"
# The README's install line, offline (there is no PyPI here, and --no-index
# makes sure nothing is fetched): a virtualenv of Debian's python3, plain pip.
if [ "$as" = root ]; then
  /usr/bin/python3 -m venv "$ws/venv"
  (cd "$ws" && venv/bin/pip install -q --no-index ./python) >/dev/null
  (cd / && "$ws/venv/bin/python" -c "import stockade; assert stockade.__file__.startswith('$ws/venv'), stockade.__file__")
  echo "ok: python3 -m venv .venv && .venv/bin/pip install ./python (offline)"
fi
export STOCKADE_BIN="$ws/stockade" STOCKADE_EXAMPLES="$ws/examples/agents" PYTHONDONTWRITEBYTECODE=1
# Not exec: the workspace is removed by the trap when pytest ends.
status=0
if [ "$as" = user ] && [ "$(id -u)" = 0 ]; then
  chown -R 65534:65534 "$ws"
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    env HOME="$ws" PATH=/usr/bin:/bin STOCKADE_BIN="$STOCKADE_BIN" STOCKADE_EXAMPLES="$STOCKADE_EXAMPLES" \
    PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests || status=$?
else
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests || status=$?
fi
exit $status
