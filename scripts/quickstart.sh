#!/usr/bin/env bash
# First command of the README: install the gateway into ./.venv and run the demo on the embedded
# store (SQLite; no database server, broker or Bluetooth needed). The demo runs the edge agent, the
# gRPC uplink and the ingest server in one process, hence the extras: uplink + server (grpcio,
# prometheus-client...), fast (numba for the dsp kernels), plot (matplotlib for the chart); all
# are binary wheels. Idempotent. Extra arguments go to `fittrack demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "quickstart: needs Python >= 3.11 as '$PY' (Debian 12: apt install python3 python3-venv)" >&2; exit 1
fi
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "quickstart: Python's venv module is missing: sudo apt install python3-venv" >&2; exit 1
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[plot,uplink,server,fast]'
exec .venv/bin/fittrack demo "$@"
