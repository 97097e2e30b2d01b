#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_restore_point
short_description: Create a named PostgreSQL restore point before a risky change
version_added: 0.1.0
description:
  - Creates a restore point with C(pg_create_restore_point()) through psql as the cluster owner, so that
    M(pgops.backup.pitr_restore) can later recover to exactly that moment with O(pgops.backup.pitr_restore#module:target_type=name).
  - PostgreSQL stops at the B(first) restore point with a given name, so a name is created once per timeline. When
    the registry already holds this name for this cluster and timeline, nothing is created and the module reports
    no change.
  - With O(stanza) set, C(pgbackrest check) then switches WAL and waits until the segment holding the restore point is in
    the repository (O(archive)), so the point is usable for recovery at once.
  - The point is recorded in O(registry_dir) (name, LSN, time, timeline, system identifier, who, why) and in the journal.
  - Refused on a standby, because restore points are created on the primary.
options:
  name:
    description: Name of the restore point, 1-63 letters, digits, C(_), C(.), C(:) or C(-), starting with a letter or digit.
    type: str
    required: true
  stanza:
    description: pgBackRest stanza of the cluster. Needed for O(archive).
    type: str
  archive:
    description: Switch WAL and wait until the restore point is archived (needs O(stanza)).
    type: bool
    default: true
  pg_version:
    description: Major version of the cluster. When omitted, the only cluster named O(pg_cluster) is used.
    type: str
  pg_cluster:
    description: Name of the cluster (postgresql-common).
    type: str
    default: main
  port:
    description: Port of the server. Taken from the cluster when omitted.
    type: int
  database:
    description: Database psql connects to.
    type: str
    default: postgres
  requested_by:
    description: Who asked for the restore point, for the registry. The sudo user or login name when omitted.
    type: str
  reason:
    description: Why (change ticket), for the registry.
    type: str
  registry_dir:
    description: Directory of the restore point registry (one JSON file per name).
    type: path
    default: /var/lib/pgops-backup/restore-points
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pgbackrest
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: pgops.backup.pitr_restore
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Mark the moment before the migration
  pgops.backup.pg_restore_point:
    name: before_migration_2026_05_02
    stanza: main
    reason: CHG-1234 schema migration
  register: point

- name: Show where it is
  ansible.builtin.debug:
    msg: "{{ point.restore_point.name }} at {{ point.restore_point.lsn }} ({{ point.restore_point.created_at }})"
'''

RETURN = r'''
restore_point:
  description: The restore point (created now or found in the registry).
  returned: always
  type: dict
  contains:
    name:
      description: Name.
      type: str
    lsn:
      description: WAL location returned by pg_create_restore_point (the end of the restore point record).
      type: str
    wal_file:
      description: WAL segment that holds it.
      type: str
    created_at:
      description: Creation time, UTC.
      type: str
    timeline:
      description: Timeline of the cluster when it was created.
      type: int
    system_identifier:
      description: System identifier of the cluster.
      type: str
    archived:
      description: Whether the WAL segment holding it was confirmed in the repository.
      type: bool
  sample: {"name": "before_migration", "lsn": "0/D018E60", "wal_file": "00000004000000000000000D",
           "created_at": "2026-11-21T09:31:32.214960Z", "timeline": 4, "archived": true}
existing:
  description: True when the restore point already existed on this timeline and nothing was created.
  returned: always
  type: bool
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.module_support import (
    fail_from, module_runner, pgbackrest_common_argument_spec)
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.postgres import Psql, find_cluster, list_clusters
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.stanza import validate_stanza_name
from ansible_collections.pgops.backup.plugins.module_utils.restore_point import (
    DEFAULT_REGISTRY_DIR, create_restore_point)


def main():
    argument_spec = pgbackrest_common_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        stanza=dict(type='str'),
        archive=dict(type='bool', default=True),
        pg_version=dict(type='str'),
        pg_cluster=dict(type='str', default='main'),
        port=dict(type='int'),
        database=dict(type='str', default='postgres'),
        requested_by=dict(type='str'),
        reason=dict(type='str'),
        registry_dir=dict(type='path', default=DEFAULT_REGISTRY_DIR),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    runner = module_runner(module)
    root = runner.as_user(None)

    def journal(line):
        root.run(['logger', '-t', 'pgops-backup', '-p', 'user.notice', '--', line], check=False)

    try:
        if p['archive'] and not p['stanza'] and not module.check_mode:
            raise EngineError('archive=true needs the stanza', hint='set stanza, or archive=false')
        validate_stanza_name(p['stanza'])
        port = p['port'] or find_cluster(list_clusters(runner), p['pg_version'], p['pg_cluster'])['port']
        pgbr = PgBackRest(runner, stanza=p['stanza'], config=p['config']) if p['stanza'] else None
        who = p['requested_by'] or os.environ.get('SUDO_USER') or os.environ.get('USER') or os.environ.get('LOGNAME')
        result = create_restore_point(Psql(runner, port=port, dbname=p['database']), p['name'], p['registry_dir'],
                                      pgbr=pgbr, archive=p['archive'], check_mode=module.check_mode,
                                      requested_by=who, reason=p['reason'], journal=journal)
    except EngineError as exc:
        fail_from(module, exc, runner)
    module.exit_json(commands=runner.commands, **result)


if __name__ == '__main__':
    main()
