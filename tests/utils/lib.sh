# shellcheck shell=bash
# Shared paths and environment for the project's scripts. Sourced, never run.
PGOPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PGOPS_CACHE="${PGOPS_CACHE:-$PGOPS_ROOT/.cache}"
PGOPS_VENV="${PGOPS_VENV:-$PGOPS_ROOT/.venv}"
# The collection as Ansible wants to find it: .cache/collections/ansible_collections/pgops/backup
PGOPS_COLLECTIONS="$PGOPS_CACHE/collections"
export PGOPS_ROOT PGOPS_CACHE PGOPS_VENV PGOPS_COLLECTIONS
export CONTAINERS_CONF="$PGOPS_CACHE/containers.conf"
export PATH="$PGOPS_VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PGOPS_COLLECTIONS"
export ANSIBLE_CONFIG="$PGOPS_ROOT/tests/utils/ansible.cfg"
export PYTHONDONTWRITEBYTECODE=1
# Debian 12 and Debian 13 always; Ubuntu 24.04 when a mirror for it is named.
PGOPS_SUITES="${PGOPS_SUITES:-bookworm trixie${PGOPS_UBUNTU_MIRROR:+ noble}}"
export PGOPS_SUITES

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
