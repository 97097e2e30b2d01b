#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_dump_restore
short_description: Restore a pg_dump_job dump into a new database and prove it against its manifest
version_added: 0.1.0
description:
  - Restores a dump taken by M(pgops.backup.pg_dump_job) (or C(pgops-backup dump)) into a new database.
  - Takes the lock of the target cluster (the one shared with in-place PITR, standby rebuild and restore
    drills, key C(VERSION/NAME)); a restore is refused while another of these jobs runs on the cluster.
  - Verifies the sha256 of every file against the manifest first, decrypts encrypted dumps into a private
    work directory (removed afterwards), restores the globals only with O(globals=true) (see there), creates
    the database from template0 with the dumped database's encoding and locale, and runs
    C(pg_restore --jobs) (C(psql) for plain dumps).
  - Everything it refuses, it refuses before anything is changed.
  - Then counts every table of the restored database and compares with the counts taken in the dump's
    snapshot; any difference fails the module, with the differing tables in RV(mismatches).
  - While it reads a dump, retention of a concurrent dump job does not delete that dump.
  - In check mode the checksums are verified and nothing is restored.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pg_dump
options:
  source:
    description:
      - A dump directory (the one holding C(manifest.json)), or a database directory under a dump
        destination, in which case its newest good dump is restored.
    type: path
    required: true
  database:
    description:
      - Name of the database to create and restore into.
    type: str
    required: true
  drop_existing:
    description:
      - Drop O(database) first when it exists. Otherwise an existing database fails the module.
      - Refused, unless O(force=true), when O(database) is the database the dump was taken from on the same
        cluster (same system identifier and database name as in the dump's manifest; a dump without a system
        identifier in its manifest counts as the same cluster when it was taken on this host), and when the
        database has sessions.
    type: bool
    default: false
  force:
    description:
      - With O(drop_existing), replace the database the dump came from on the same cluster, and terminate
        the sessions of the database (C(DROP DATABASE ... WITH (FORCE)) from PostgreSQL 13).
    type: bool
    default: false
  jobs:
    description:
      - Parallel pg_restore jobs. C(0) means the number of cores (at most 8).
    type: int
    default: 0
  no_owner:
    description:
      - Do not restore object ownership (C(--no-owner)); objects belong to the connecting user.
    type: bool
    default: false
  no_privileges:
    description:
      - Do not restore privileges (C(--no-privileges)).
    type: bool
    default: false
  globals:
    description:
      - Restore the dump's globals (roles, tablespaces) before the database. Off by default, since the
        target is an existing cluster whose roles belong to it.
      - Roles that exist in the target cluster are left exactly as they are (password, attributes, settings,
        memberships); their statements are left out. Missing roles are created with their attributes,
        password and memberships. Tablespaces that exist are kept ("already exists" is ignored).
    type: bool
    default: false
  compare:
    description:
      - Compare the restored row counts with the manifest.
    type: bool
    default: true
  passphrase:
    description:
      - Passphrase of an encrypted dump. Given to gpg on its standard input, never on a command line.
    type: str
  passphrase_file:
    description:
      - File holding the passphrase of an encrypted dump; refused unless only its owner can read it.
    type: path
  work_dir:
    description:
      - Where encrypted dumps are decrypted. Next to the dump (same file system, same permissions) when omitted.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: pgops.backup.pg_dump_job
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Restore the newest dump of shop into a scratch database and prove it
  pgops.backup.pg_dump_restore:
    source: /var/backups/pgops-dump/shop
    database: shop_restore_check
    drop_existing: true
    no_owner: true
    jobs: 4
  register: restored

- name: Report
  ansible.builtin.debug:
    msg: "{{ restored.tables_compared }} tables, {{ restored.rows_total }} rows, as in the manifest"

- name: Restore an encrypted dump
  pgops.backup.pg_dump_restore:
    source: /srv/dumps/shop/20261121T020000Z
    database: shop_copy
    passphrase: "{{ vault_dump_passphrase }}"
'''

RETURN = r'''
database:
  description: The restored database.
  returned: always
  type: str
source:
  description: The dump directory that was restored.
  returned: always
  type: str
source_database:
  description: The database the dump was taken from.
  returned: always
  type: str
matches:
  description: Whether every table's row count (and the number of large objects) equals the manifest.
  returned: success, not in check mode, with O(compare)
  type: bool
mismatches:
  description: Tables whose count differs, that are missing, or that are not in the manifest.
  returned: when the counts differ
  type: list
  elements: dict
tables_compared:
  description: Number of tables compared.
  returned: success, not in check mode, with O(compare)
  type: int
rows_total:
  description: Rows found in the compared tables.
  returned: success, not in check mode, with O(compare)
  type: int
large_objects:
  description: Large objects in the restored database.
  returned: success, not in check mode, with O(compare)
  type: int
warnings:
  description: Differences that do not fail the restore (a materialized view refreshed to other contents).
  returned: success, not in check mode, with O(compare)
  type: list
  elements: str
globals_restored:
  description: Whether the globals were restored.
  returned: success, not in check mode
  type: bool
restore_seconds:
  description: Wall time of pg_restore.
  returned: success, not in check mode
  type: float
duration_seconds:
  description: Wall time of the whole restore, checks included.
  returned: success, not in check mode
  type: float
globals:
  description: With O(globals), the roles created and the existing roles left unchanged (created, left_unchanged, statements_left_out).
  returned: success, not in check mode
  type: dict
dropped_existing:
  description: Whether an existing O(database) was dropped first.
  returned: success, not in check mode
  type: bool
cluster_lock:
  description: The cluster lock held during the restore (cluster, path, stale holder cleared if any).
  returned: success, not in check mode
  type: dict
target_exists:
  description: In check mode, whether O(database) exists already.
  returned: check mode
  type: bool
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.pgops.backup.plugins.module_utils.dump_crypto import load_passphrase
from ansible_collections.pgops.backup.plugins.module_utils.dump_restore import RestoreJob, RestoreMismatch
from ansible_collections.pgops.backup.plugins.module_utils.dump_session import HAS_PSYCOPG2, PSYCOPG2_IMPORT_ERROR
from ansible_collections.pgops.backup.plugins.module_utils.module_support import fail_from, module_runner
from ansible_collections.pgops.backup.plugins.module_utils.pg_dump import Connection, connection_argument_spec, os_failure
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        source=dict(type='path', required=True),
        database=dict(type='str', required=True),
        drop_existing=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        jobs=dict(type='int', default=0),
        no_owner=dict(type='bool', default=False),
        no_privileges=dict(type='bool', default=False),
        globals=dict(type='bool', default=False),
        compare=dict(type='bool', default=True),
        passphrase=dict(type='str', no_log=True),
        passphrase_file=dict(type='path', no_log=False),
        work_dir=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('passphrase', 'passphrase_file')])
    params = module.params
    if not HAS_PSYCOPG2 and params['compare'] and not module.check_mode:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=str(PSYCOPG2_IMPORT_ERROR))
    runner = module_runner(module)
    try:
        job = RestoreJob(
            runner, params['source'], params['database'], jobs=params['jobs'], no_owner=params['no_owner'],
            no_privileges=params['no_privileges'], include_globals=params['globals'],
            drop_existing=params['drop_existing'], force=params['force'],
            passphrase=load_passphrase(passphrase=params['passphrase'], passphrase_file=params['passphrase_file']),
            connection=Connection(params['port'], params['host'], params['user'], params['passfile']),
            bin_dir=params['bin_dir'], compare=params['compare'], work_dir=params['work_dir'])
        if module.check_mode:
            module.exit_json(changed=True, commands=runner.commands, **job.plan())
        result = job.run()
    except RestoreMismatch as exc:
        fail_from(module, exc, runner, **exc.result)
    except (EngineError, OSError) as exc:
        fail_from(module, os_failure(exc, 'pg_dump_restore'), runner)
    module.exit_json(changed=True, commands=runner.commands, **result)


if __name__ == '__main__':
    main()
