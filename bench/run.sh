#!/usr/bin/env bash
# Benchmarks of issue 8: bench/run.sh [--size-mb N] [--runs N] [--only KEY,...] [--keep]
# Sets everything up (tests/utils/setup.sh for Debian 13, matplotlib into the project venv), then
# bench/main.py brings up the bench host, measures and writes bench/results/DATE/ and bench/results/latest/.
# Other people share this machine: run it as `flock /tmp/pgops-molecule.lock bench/run.sh`.
set -euo pipefail
. "$(dirname "$0")/../tests/utils/lib.sh"
export PGOPS_SUITES=trixie
bash "$PGOPS_ROOT/tests/utils/setup.sh"
req_hash=$(sha256sum "$PGOPS_ROOT/bench/requirements.txt" | cut -c1-16)
if [ "$(cat "$PGOPS_VENV/.bench-requirements" 2>/dev/null)" != "$req_hash" ]; then
  log "installing bench/requirements.txt into $PGOPS_VENV"
  "$PGOPS_VENV/bin/pip" install -q --disable-pip-version-check -r "$PGOPS_ROOT/bench/requirements.txt"
  echo "$req_hash" >"$PGOPS_VENV/.bench-requirements"
fi
exec "$PGOPS_VENV/bin/python" "$PGOPS_ROOT/bench/main.py" "$@"
