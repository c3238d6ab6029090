#!/usr/bin/env bash
# Second command of the README (and what .ci/run runs): provision the services (PostgreSQL 15 +
# TimescaleDB, Mosquitto, dbus-daemon), install the project with its test dependencies into
# ./.venv, and run the whole suite. Idempotent; run as root on Debian 12.
# Extra arguments go to pytest (e.g. scripts/test.sh -k wire -x).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
if [ "$(id -u)" = 0 ]; then
  scripts/provision.sh
else
  sudo scripts/provision.sh
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "[test] install done after $(( $(date +%s) - started )) s"
.venv/bin/python -m pytest "$@"
# dsp kernels must give the same numbers without Numba (iOS/Android Python): run them once more
# with the JIT disabled.
if [ -d tests/dsp ] && [ $# = 0 ]; then
  echo "[test] dsp tests again with NUMBA_DISABLE_JIT=1"
  NUMBA_DISABLE_JIT=1 .venv/bin/python -m pytest tests/dsp -q -p no:cacheprovider
fi
echo "[test] all done in $(( $(date +%s) - started )) s"
