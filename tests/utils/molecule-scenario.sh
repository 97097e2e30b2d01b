#!/usr/bin/env bash
# Run one molecule scenario step by step, keeping the converge and check-mode output that the
# scenario's testinfra files read (secrets must not be in them; check mode must change nothing).
# Usage: molecule-scenario.sh SCENARIO
set -euo pipefail
. "$(dirname "$0")/lib.sh"
scenario="$1"
export PGOPS_LOG_DIR="$PGOPS_CACHE/logs"
mkdir -p "$PGOPS_LOG_DIR"
platforms="$PGOPS_ROOT/molecule/platforms-debian.yml"
[ -n "${PGOPS_UBUNTU_MIRROR:-}" ] && platforms="$PGOPS_ROOT/molecule/platforms-all.yml"
cd "$PGOPS_ROOT"
mol() { molecule -c molecule/base.yml -c "$platforms" "$1" -s "$scenario" "${@:2}"; }
# Keep each step's output: Ansible's own log (plain, unwrapped: what the tests read) in STEP.log,
# molecule's console in STEP.out. Show the recap; fail when the step failed.
logged() {
  local step="$1"; shift
  local base="$PGOPS_LOG_DIR/$scenario-$step"
  rm -f "$base.log" "$base.out"
  if ! ANSIBLE_LOG_PATH="$base.log" "$@" >"$base.out" 2>&1; then
    tail -n 60 "$base.out"; log "$scenario: $step failed (output: $base.out, $base.log)"; return 1
  fi
  [ ! -f "$base.log" ] || sed -n '/PLAY RECAP/,$p' "$base.log" | tail -n 4
}

# Optional steps follow the scenario's own test_sequence (molecule.yml).
wants() { grep -qE "^\s*-\s*$1\s*$" "molecule/$scenario/molecule.yml"; }

trap 'mol destroy >/dev/null 2>&1 || true' EXIT
started=$(date +%s)
mol destroy >/dev/null 2>&1 || true
log "$scenario: create"; logged create mol create
log "$scenario: converge (-vvv --diff)"; logged converge mol converge -- -vvv --diff
if wants idempotence; then
  log "$scenario: idempotence"; logged idempotence mol idempotence
fi
if wants check; then
  log "$scenario: check mode on the configured hosts"; logged check mol converge -- --check --diff
fi
if wants side_effect; then
  log "$scenario: side effect"; logged side_effect mol side-effect
fi
log "$scenario: verify"; mol verify
log "$scenario: passed in $(( $(date +%s) - started )) s"
