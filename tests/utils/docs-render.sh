#!/usr/bin/env bash
# Every module's and role's documentation renders with ansible-doc.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGOPS_ROOT"
for module in plugins/modules/*.py; do
  name=$(basename "$module" .py)
  ansible-doc "pgops.backup.$name" >/dev/null
  echo "module pgops.backup.$name: ok"
done
for role in roles/*/; do
  name=$(basename "$role")
  ansible-doc -t role "pgops.backup.$name" >/dev/null
  echo "role pgops.backup.$name: ok"
done
