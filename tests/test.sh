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

gate "set-up" bash "$PGOPS_ROOT/tests/utils/setup.sh" --no-images
cd "$PGOPS_ROOT"
# The test host images build (network and disk bound) while the static gates run (CPU bound).
log "building the test host images in the background (.cache/logs/images.log)"
mkdir -p "$PGOPS_CACHE/logs"
bash "$PGOPS_ROOT/tests/utils/build-images.sh" >"$PGOPS_CACHE/logs/images.log" 2>&1 &
images=$!
trap 'kill "$images" 2>/dev/null || true' EXIT
gate "yamllint" yamllint -s .
gate "ansible-lint (production profile)" ansible-lint
gate "unit tests" python -m pytest -q -p no:cacheprovider tests/unit
# The same tests on other days: a test that reads the real date instead of module_utils.clock fails here.
for day in '2026-01-01 00:00:30' '2031-02-28 23:59:59'; do
  gate "unit tests, clock at $day" faketime -f "@$day" python -m pytest -q -p no:cacheprovider tests/unit
done
gate "ansible-test sanity" bash "$PGOPS_ROOT/tests/utils/sanity.sh"
gate "ansible-doc renders" bash "$PGOPS_ROOT/tests/utils/docs-render.sh"
gate "execution environment: ansible-builder create context" bash "$PGOPS_ROOT/tests/utils/ee.sh"
images_ready() { wait "$images" || { tail -n 40 "$PGOPS_CACHE/logs/images.log"; return 1; }; }
gate "test host images" images_ready
# Scenarios in a fixed order: the foundation first, then the rest alphabetically.
scenarios="default $(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | grep -vx default | sort | tr '\n' ' ')"
for scenario in ${PGOPS_SCENARIOS:-$scenarios}; do
  gate "molecule scenario $scenario" flock /tmp/pgops-molecule.lock bash "$PGOPS_ROOT/tests/utils/molecule-scenario.sh" "$scenario"
done
# What users install: the built tarball, installed into a clean collections path (takes the lock itself).
gate "collection artifact: demo converge and drill from the built tarball" bash "$PGOPS_ROOT/tests/utils/artifact.sh"
log "all gates passed in $(( $(date +%s) - started )) s"
echo "gates: $passed passed, 0 failed"
