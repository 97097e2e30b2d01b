#!/usr/bin/env bash
# The main job on a local default host: a Debian 12 container running PostgreSQL with some data is
# protected by the collection (archiving, stanza, full backup, timers), then `pgbackrest info` and a
# restore drill prove that the backup restores and holds the data.
# The playbooks run by name (pgops.backup.site), as users run them, from the collections path:
# the source tree by default; tests/utils/artifact.sh points PGOPS_DEMO_COLLECTIONS at the installed
# artifact instead (with PGOPS_DEMO_HOST, PGOPS_DEMO_DIR and PGOPS_DEMO_SETUP=0).
set -euo pipefail
. "$(dirname "$0")/utils/lib.sh"
export PGOPS_SUITES=bookworm
[ "${PGOPS_DEMO_SETUP:-1}" = 0 ] || bash "$PGOPS_ROOT/tests/utils/setup.sh"
export ANSIBLE_COLLECTIONS_PATH="${PGOPS_DEMO_COLLECTIONS:-$PGOPS_COLLECTIONS}"

host="${PGOPS_DEMO_HOST:-pgops-demo}"
demo="${PGOPS_DEMO_DIR:-$PGOPS_CACHE/demo}"
mkdir -p "$demo"; chmod 0700 "$demo"

log "starting the demo host $host"
podman rm -f -t 0 "$host" >/dev/null 2>&1 || true
podman run -d --name "$host" --hostname "$host" --cap-add SYS_ADMIN localhost/pgops-host:bookworm >/dev/null
podman exec "$host" systemctl is-system-running --wait >/dev/null || true
for _ in $(seq 1 30); do
  podman exec "$host" pg_isready -q && break
  sleep 1
done

# A generated passphrase, kept in a 0600 file outside git (in production: ansible-vault).
if [ ! -s "$demo/secrets.yml" ]; then
  ( umask 077; python3 -c 'import secrets; print("pgbackrest_cipher_pass: " + secrets.token_urlsafe(32))' >"$demo/secrets.yml" )
fi
cat >"$demo/inventory.yml" <<INVENTORY
postgresql:
  hosts:
    $host:
      # podman resolves to tests/utils/connection_plugins/podman.py (pipelining) through ANSIBLE_CONFIG.
      ansible_connection: podman
      ansible_python_interpreter: /usr/bin/python3
INVENTORY

log "writing demo data"
podman exec "$host" runuser -u postgres -- psql -XAtq -c "
  CREATE TABLE demo_orders AS
    SELECT g AS id, md5(g::text) AS note, now() - g * interval '1 minute' AS created
    FROM generate_series(1, 200000) g;
  SELECT count(*) || ' rows in demo_orders' FROM demo_orders;"

log "protecting $host with pgops.backup (pgops.backup.site from $ANSIBLE_COLLECTIONS_PATH)"
ansible-playbook -i "$demo/inventory.yml" -e "@$demo/secrets.yml" pgops.backup.site

log "pgbackrest info on $host"
podman exec "$host" runuser -u postgres -- pgbackrest info

log "restore drill: restore the newest backup into a scratch instance and compare"
ansible-playbook -i "$demo/inventory.yml" -e "@$demo/secrets.yml" pgops.backup.restore_test \
  -e '{"restore_test_sql_checks": [{"name": "demo_orders rows", "query": "SELECT count(*) FROM demo_orders", "expected": "200000"}]}'

log "demo done: $host is protected (podman exec -it $host bash to look around; podman rm -f $host to remove it)"
