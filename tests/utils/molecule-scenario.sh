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
# Keep the full output in a log and show its recap; fail when the step failed.
logged() {
  local step="$1"; shift
  local logfile="$PGOPS_LOG_DIR/$scenario-$step.log"
  if ! "$@" >"$logfile" 2>&1; then
    tail -n 60 "$logfile"; log "$scenario: $step failed (full output: $logfile)"; return 1
  fi
  sed -n '/PLAY RECAP/,/^$/p' "$logfile" | tail -n 6
}

trap 'mol destroy >/dev/null 2>&1 || true' EXIT
started=$(date +%s)
mol destroy >/dev/null 2>&1 || true
log "$scenario: create"; logged create mol create
log "$scenario: converge (-vvv --diff)"; logged converge mol converge -- -vvv --diff
log "$scenario: idempotence"; logged idempotence mol idempotence
log "$scenario: check mode"; logged check mol check
if [ -f "molecule/$scenario/side_effect.yml" ]; then
  log "$scenario: side effect"; logged side_effect mol side-effect
fi
log "$scenario: verify"; mol verify
log "$scenario: passed in $(( $(date +%s) - started )) s"
