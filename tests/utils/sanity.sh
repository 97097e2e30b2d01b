#!/usr/bin/env bash
# ansible-test sanity without Docker: the collection is copied to .../ansible_collections/pgops/backup
# inside a git repository of its own, and the get-pip bootstrap is our local stand-in.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
dest="$PGOPS_CACHE/sanity/ansible_collections/pgops/backup"
rm -rf "$dest"; mkdir -p "$dest"
cd "$PGOPS_ROOT"
# What the collection ships: the benchmark suite (bench/) is a developer tool, like .ci and tests/utils.
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' \
  | grep -v '^bench/' | tar -cf - -T - | tar -C "$dest" -xf -
( cd "$dest" && git init -q && git add -A )

pip_version=$(grep -oE "pip='[0-9.]+'" "$PGOPS_VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | grep -oE "[0-9.]+")
mkdir -p ~/.ansible/test/cache
cp "$PGOPS_ROOT/tests/utils/get_pip_standin.py" ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"

cd "$dest"
python_version=$("$PGOPS_VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ansible-test sanity --local --requirements --python "$python_version" --color no "$@"
