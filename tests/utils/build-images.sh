#!/usr/bin/env bash
# Build the test host image of every suite in PGOPS_SUITES at once: debootstrap and apt wait on the
# network and the disk far more than on the CPU, so the suites overlap well. Output per suite in
# .cache/logs/image-SUITE.log; fails when any suite failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$PGOPS_CACHE/logs"
declare -A pids
for suite in $PGOPS_SUITES; do
  bash "$PGOPS_ROOT/tests/utils/build-image.sh" "$suite" >"$PGOPS_CACHE/logs/image-$suite.log" 2>&1 &
  pids[$suite]=$!
done
failed=()
for suite in "${!pids[@]}"; do
  wait "${pids[$suite]}" || failed+=("$suite")
done
for suite in $PGOPS_SUITES; do sed 's/^/['"$suite"'] /' "$PGOPS_CACHE/logs/image-$suite.log" >&2; done
if [ "${#failed[@]}" -gt 0 ]; then
  log "image build failed for: ${failed[*]}"
  exit 1
fi
