#!/usr/bin/env bash
# The whole test suite, set-up included, on a fresh machine of this kind (root, Debian 12):
# lint, unit tests, ansible-test sanity, then every molecule scenario on real systemd hosts.
set -euo pipefail
. "$(dirname "$0")/utils/lib.sh"
started=$(date +%s)
passed=0
gate() {
  local name="$1"; shift
  log "gate: $name"
  local t0; t0=$(date +%s)
  "$@"
  passed=$((passed + 1))
  log "gate passed: $name ($(( $(date +%s) - t0 )) s)"
}

gate "set-up" bash "$PGOPS_ROOT/tests/utils/setup.sh"
cd "$PGOPS_ROOT"
gate "yamllint" yamllint -s .
gate "ansible-lint (production profile)" ansible-lint
gate "unit tests" python -m pytest -q -p no:cacheprovider tests/unit
gate "ansible-test sanity" bash "$PGOPS_ROOT/tests/utils/sanity.sh"
gate "ansible-doc renders" bash "$PGOPS_ROOT/tests/utils/docs-render.sh"
# Scenarios in a fixed order: the foundation first, then the rest alphabetically.
scenarios="default $(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | grep -vx default | sort | tr '\n' ' ')"
for scenario in ${PGOPS_SCENARIOS:-$scenarios}; do
  gate "molecule scenario $scenario" flock /tmp/pgops-molecule.lock bash "$PGOPS_ROOT/tests/utils/molecule-scenario.sh" "$scenario"
done
log "all gates passed in $(( $(date +%s) - started )) s"
echo "gates: $passed passed, 0 failed"
