#!/usr/bin/env bash
# Everything the demo and the tests need on a fresh machine of this kind (root, Debian 12):
# host packages, the project venv, test collections, podman settings and the test host images.
# Idempotent: each step is skipped when its result is already current.
# Usage: setup.sh [--no-images]   (--no-images: the caller builds them with build-images.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$PGOPS_CACHE"

host_packages=(podman runc netavark aardvark-dns iptables debootstrap python3-venv git prometheus shellcheck faketime)
[ -n "${PGOPS_UBUNTU_MIRROR:-}" ] && host_packages+=(curl)
missing=()
for pkg in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing host packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python 3.11: the newest that ansible-core 2.19 supports here (see requirements-dev.txt).
python_bin="${PGOPS_PYTHON:-$(command -v python3.11 || command -v python3)}"
req_hash=$(sha256sum "$PGOPS_ROOT/requirements-dev.txt" | cut -c1-16)
if [ "$(cat "$PGOPS_VENV/.requirements" 2>/dev/null)" != "$req_hash" ]; then
  log "creating $PGOPS_VENV"
  "$python_bin" -m venv "$PGOPS_VENV"
  "$PGOPS_VENV/bin/pip" install -q --disable-pip-version-check -r "$PGOPS_ROOT/requirements-dev.txt" 2>&1 | grep -v '^WARNING: Location' || true
  "$PGOPS_VENV/bin/python" -c 'import ansible, molecule, testinfra, psycopg2'
  echo "$req_hash" >"$PGOPS_VENV/.requirements"
fi

# Galaxy is out of reach: the test-only collections come out of the PyPI `ansible` package.
"$PGOPS_VENV/bin/python" "$PGOPS_ROOT/tests/utils/test_collections.py" "$PGOPS_CACHE"

# The collection itself, where Ansible looks for pgops.backup.
mkdir -p "$PGOPS_COLLECTIONS/ansible_collections/pgops"
ln -sfn "$PGOPS_ROOT" "$PGOPS_COLLECTIONS/ansible_collections/pgops/backup"

# Podman settings for this machine: its hard limits go into the project's containers.conf.
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); pid_max=$(cat /proc/sys/kernel/pid_max)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
[ "$nofile" = unlimited ] && nofile=1048576
sed -e "s/@NOFILE@/$nofile/g" -e "s/@NPROC@/$nproc/g" "$PGOPS_ROOT/tests/utils/containers.conf.in" >"$CONTAINERS_CONF.tmp"
mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"

[ "${1:-}" = --no-images ] || bash "$PGOPS_ROOT/tests/utils/build-images.sh"
