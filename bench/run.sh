#!/usr/bin/env bash
# Benchmarks of issue 8: bench/run.sh [--size-mb N] [--runs N] [--only KEY,...] [--no-explore]
#   [--connection ssh|podman] [--hosts 1,4,8] [--converge-runs N] [--results DIR] [--keep]
# Sets everything up (tests/utils/setup.sh for Debian 13, matplotlib into the project venv), then
# bench/main.py brings up the bench host, measures and writes bench/results/DATE/ and bench/results/latest/.
# Other people share this machine: run it as `flock /tmp/pgops-molecule.lock bench/run.sh`.
set -euo pipefail
. "$(dirname "$0")/../tests/utils/lib.sh"
export PGOPS_SUITES=trixie
setup_started=$SECONDS
bash "$PGOPS_ROOT/tests/utils/setup.sh"
# Ansible reaches the bench containers over SSH (bench/fleet.py): the client and ssh-keygen.
if ! command -v ssh-keygen >/dev/null; then
  log "installing openssh-client"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-client >/dev/null
fi
req_hash=$(sha256sum "$PGOPS_ROOT/bench/requirements.txt" | cut -c1-16)
if [ "$(cat "$PGOPS_VENV/.bench-requirements" 2>/dev/null)" != "$req_hash" ]; then
  log "installing bench/requirements.txt into $PGOPS_VENV"
  "$PGOPS_VENV/bin/pip" install -q --disable-pip-version-check -r "$PGOPS_ROOT/bench/requirements.txt"
  echo "$req_hash" >"$PGOPS_VENV/.bench-requirements"
fi
export BENCH_SETUP_SECONDS=$((SECONDS - setup_started))
log "setup took ${BENCH_SETUP_SECONDS} s"
exec "$PGOPS_VENV/bin/python" "$PGOPS_ROOT/bench/main.py" "$@"
