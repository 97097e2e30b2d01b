#!/usr/bin/env bash
# The artifact users install, tested as users get it: build the collection tarball, check what it
# ships, install it into a clean collections path (with only the test-only collections the demo
# needs beside it), prove that Ansible resolves pgops.backup to that installed copy and not to the
# source tree, then run the demo's converge and restore drill from it on a test host container.
# Usage: artifact.sh   (after tests/utils/setup.sh; the container part waits on the molecule lock)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bash "$PGOPS_ROOT/tests/utils/setup.sh" --no-images
image=localhost/pgops-host:bookworm
podman image exists "$image" || { log "missing test host image $image: run tests/utils/setup.sh first"; exit 1; }

out="$PGOPS_CACHE/artifact"
clean="$out/collections"
host=pgops-artifact
rm -rf "$out"
mkdir -p "$out"
version=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$PGOPS_ROOT/galaxy.yml")
tarball="$out/pgops-backup-$version.tar.gz"

log "building the collection artifact ($tarball)"
( cd "$PGOPS_ROOT" && ansible-galaxy collection build --output-path "$out" >/dev/null )
[ -s "$tarball" ] || { log "ansible-galaxy collection build made no $tarball"; exit 1; }

# What it ships: the collection, not the development tooling (galaxy.yml build_ignore).
tar -tzf "$tarball" | sed 's|^\./||' >"$out/contents.txt"
for wanted in MANIFEST.json FILES.json README.md COPYING requirements.txt meta/runtime.yml changelogs/changelog.yaml \
    tests/sanity/ playbooks/site.yml playbooks/restore_test.yml plugins/modules/ plugins/module_utils/ \
    roles/pgbackrest/ roles/pg_dump/ roles/restore_test/ roles/monitoring/ docs/README.md; do
  grep -qx "$wanted" "$out/contents.txt" || { log "the artifact lacks $wanted (galaxy.yml build_ignore?)"; exit 1; }
done
if grep -E '^(\.cache|\.venv|\.ci|\.git|bench|molecule|ee|tests/unit|tests/utils|changelogs/fragments)(/|$)|^(tests/[^/]*\.sh|requirements-dev\.txt|execution-environment\.yml|\.ansible-lint|\.yamllint|\.gitignore)$|\.pyc$' \
    "$out/contents.txt"; then
  log "the artifact ships development files (above): add them to build_ignore in galaxy.yml"; exit 1
fi
log "artifact: $(wc -l <"$out/contents.txt") entries, $(du -k "$tarball" | cut -f1) KiB"

# A clean collections path: the installed artifact, plus containers.podman (the test connection
# plugin imports it) linked from .cache/collections. Never pgops.backup from the source tree.
export ANSIBLE_COLLECTIONS_PATH="$clean"
ansible-galaxy collection install --offline --force -p "$clean" "$tarball" >/dev/null
mkdir -p "$clean/ansible_collections/containers"
ln -sfn "$PGOPS_COLLECTIONS/ansible_collections/containers/podman" "$clean/ansible_collections/containers/podman"

installed="$clean/ansible_collections/pgops/backup"
listed=$(ansible-galaxy collection list pgops.backup --format json 2>/dev/null)
python - "$clean/ansible_collections" "$version" "$listed" <<'PY'
import json, sys
path, version, listed = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
found = {p: c['pgops.backup']['version'] for p, c in listed.items() if 'pgops.backup' in c}
if found != {path: version}:
    sys.exit('pgops.backup resolves to %r, expected only %s %s' % (found, path, version))
PY
if [ -L "$installed" ] || [ ! -f "$installed/MANIFEST.json" ] || [ -e "$installed/molecule" ] \
    || [ "$(realpath "$installed")" != "$installed" ]; then
  log "$installed is not an installed artifact (a symlink, or no MANIFEST.json)"; exit 1
fi
log "pgops.backup $version resolves to the installed artifact $installed"

# The demo's converge and restore drill, from the installed artifact, on a host of its own.
trap 'podman rm -f -t 0 "$host" >/dev/null 2>&1 || true' EXIT
log "waiting for the test host lock (/tmp/pgops-molecule.lock)"
flock /tmp/pgops-molecule.lock env PGOPS_DEMO_COLLECTIONS="$clean" PGOPS_DEMO_HOST="$host" \
  PGOPS_DEMO_DIR="$out/demo" PGOPS_DEMO_SETUP=0 bash "$PGOPS_ROOT/tests/demo.sh"
log "collection artifact: converge and restore drill passed from $tarball"
