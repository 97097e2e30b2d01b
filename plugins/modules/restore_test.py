#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: restore_test
short_description: Restore drill - restore the newest backup into a scratch instance and prove it
version_added: 0.1.0
description:
  - Restores a backup into a B(scratch instance) on this host and checks it, so that a backup is known to restore
    instead of assumed to. The same engine runs as C(pgops-backup restore-test) from the timers of the
    C(pgops.backup.restore_test) role.
  - B(Sources.) C(pgbackrest) restores the newest backup set of O(stanza) (or O(backup_set), from all repositories or
    O(repo)) to the end of the backup, or replays the archived WAL to a target (O(target_type)), and promotes it.
    C(pg_dump) restores the newest good dump of every database of a pg_dump job (globals first) into an empty
    cluster made with C(initdb).
  - B(The scratch instance can never disturb production.) It has its own data directory under O(scratch_base_dir) and
    its own port (the first free one from 5433), listens on the Unix socket only and accepts only the OS user
    postgres there (C(local all postgres peer)), keeps a reserve free on production's file systems (O(scratch_reserve)),
    takes the lock of the production cluster (shared with in-place PITR, standby rebuild and dump restores, so it
    never runs during one of them), and runs with C(archive_mode=off)
    (in its configuration and on the server command line), so it cannot push WAL into the stanza. Tablespaces of a
    dump's globals are created inside it. It is removed afterwards, or kept (stopped) after a failure with
    O(keep_failed=true).
  - B(Checks), each reported with pass, fail or skip and its evidence. C(source); C(restore); C(recovery)
    (pgBackRest - the copy reached consistency or the target and promoted); C(row_counts) (pg_dump - every table has
    exactly the rows the dump's manifest counted in the dump's snapshot); C(isolation); C(heartbeat) (the row that
    C(pgops-backup heartbeat) writes every minute on the primary is present and recent - the measured RPO); C(amcheck)
    (C(pg_amcheck --heapallindexed) on every database, PostgreSQL 14 and later; the amcheck extension is created in the
    scratch copy only); C(full_read) (every row of every table read, TOAST included); one C(sql:NAME) per O(sql_checks)
    entry; C(checksums) (C(pg_checksums --check) on the stopped copy, when data checksums are on).
  - B(Report.) Source, backup label, the timing of every phase (the time until the copy was usable is the measured
    RTO), RPO and every check. It is also the job record C(restore_test-NAME.json) in O(record_dir) (status, finished_epoch,
    duration_seconds), which the monitoring role exports. The module fails when any check fails.
  - In check mode nothing is restored; the module returns the plan (backup set or dumps, scratch directory and port,
    checks, steps).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  source:
    description: What to restore.
    type: str
    choices: [pgbackrest, pg_dump]
    default: pgbackrest
  name:
    description:
      - Name of the drill; the record is C(restore_test-NAME.json) and the scratch instance C(drill-NAME).
      - 1-34 lower-case letters, digits, C(_) and C(-). The source when omitted.
    type: str
  stanza:
    description: pgBackRest stanza. Required with O(source=pgbackrest).
    type: str
  config:
    description: pgBackRest configuration file; pgBackRest's default when omitted.
    type: path
  backup_set:
    description: Backup set label to restore. The newest backup (that precedes a time or lsn target) when omitted.
    type: str
  repo:
    description: Repository number to restore from. All repositories (pgBackRest's order) when omitted.
    type: int
  target_type:
    description:
      - C(immediate) recovers to the end of the backup. C(latest) replays every archived WAL segment.
      - C(time), C(xid), C(name) and C(lsn) replay to O(target).
    type: str
    choices: [immediate, latest, time, xid, name, lsn]
    default: immediate
  target:
    description: Value of a C(time) (with its UTC offset), C(xid), C(name) or C(lsn) target.
    type: str
  dump_job:
    description:
      - pg_dump job (of the M(pgops.backup.pg_dump) role or C(pgops-backup dump)) whose newest good dumps are restored.
      - The job with the newest record in O(record_dir) when omitted.
    type: str
  dump_destination:
    description: Dump destination to scan. Taken from the job's record (or job file) when omitted.
    type: path
  passphrase_file:
    description: gpg passphrase file (mode 0600) of encrypted dumps. The dump job's passphrase file when omitted.
    type: path
  passphrase:
    description: gpg passphrase of encrypted dumps, instead of O(passphrase_file).
    type: str
  sql_checks:
    description:
      - Queries run on the restored copy, each with its expected result.
      - The result is compared as psql prints it unaligned - fields joined by C(|), rows by newlines; true and false are
        C(t) and C(f), null is empty; a list for O(sql_checks[].expected) means one item per row.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check (reported as C(sql:NAME)).
        type: str
        required: true
      query:
        description: The SQL.
        type: str
        required: true
      expected:
        description: The expected result.
        type: raw
        required: true
      database:
        description: Database the query runs in.
        type: str
        default: postgres
  heartbeat:
    description:
      - The heartbeat check. C(required) fails when the restored copy has no heartbeat table; C(auto) skips the check
        when neither the copy nor production has the table (the heartbeat writer is not installed); C(off) skips it.
    type: str
    choices: [auto, required, 'off']
    default: auto
  heartbeat_database:
    description: Database of the C(public.pgops_heartbeat) table.
    type: str
    default: postgres
  heartbeat_max_age:
    description:
      - How much older than the copy's recovery point (end of the backup, target, dump snapshot) the last heartbeat may be,
        for example C(5m). C(0) means no limit.
    type: str
    default: 5m
  amcheck:
    description: Run C(pg_amcheck) on every database of the copy.
    type: bool
    default: true
  heapallindexed:
    description: Let pg_amcheck verify that every heap tuple is in its indexes (slower on large data).
    type: bool
    default: true
  full_read:
    description: Read every row of every table.
    type: bool
    default: true
  checksums:
    description: Run C(pg_checksums --check) on the stopped copy when data checksums are on.
    type: bool
    default: true
  keep_failed:
    description: Keep the scratch instance (stopped) when the drill fails, for inspection. The next drill replaces it.
    type: bool
    default: false
  scratch_base_dir:
    description: Directory that holds scratch instances.
    type: path
    default: /var/lib/postgresql/pgops-scratch
  scratch_port:
    description: Port of the scratch instance. The first free port from 5433 when omitted.
    type: int
  scratch_reserve:
    description:
      - Free space kept on the file systems production writes to. When O(scratch_base_dir) is on the file system of the
        data directory or of C(pg_wal) (its symlink followed) of a cluster of this host, the drill is refused before
        anything is restored if the restored copy (the backup's size, or the dumps' size, with a margin) would leave less
        than this free there.
      - C(auto) (the default) is the larger of 10% of that file system and 1 GiB, so that a drill can never fill the disk
        a primary writes WAL to. Or a percentage (C(20%)), or a size (C(5G), C(500M)); C(0) turns the reserve off.
      - A scratch file system of its own is only checked for the space the copy needs.
    type: str
    default: auto
  timeout:
    description: Seconds to wait for recovery.
    type: int
    default: 3600
  pg_version:
    description:
      - Server version of the scratch instance. The stanza's, or the dumped server's (or the next installed) when omitted.
    type: str
  pg_cluster:
    description: Name of the production cluster on this host (its port is never used; the heartbeat table is looked up there).
    type: str
    default: main
  jobs:
    description: Parallel pg_restore jobs for custom and directory dumps. C(0) means the number of cores.
    type: int
    default: 0
  record_dir:
    description: Directory of the job records (the drill's record is written there; pg_dump job records are read from there).
    type: path
    default: /var/lib/pgops-backup/records
  run_as:
    description: Operating system user that runs pgBackRest, initdb, pg_ctl, psql and pg_restore when the module runs as root.
    type: str
    default: postgres
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Runs as root (C(become)); every program runs as O(run_as).
  - Debian/Ubuntu layout (postgresql-common, server binaries in C(/usr/lib/postgresql/VERSION/bin)).
  - One drill runs at a time on a host; a second one waits.
  - See C(docs/restore-drills.md) for how to read a report and triage a failed drill.
seealso:
  - module: pgops.backup.pitr_restore
  - module: pgops.backup.pg_dump_restore
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Restore the newest backup of stanza main and check it
  pgops.backup.restore_test:
    stanza: main
    sql_checks:
      - name: orders exist
        query: SELECT count(*) > 0 FROM orders
        expected: true
        database: shop
  register: drill

- name: Show the report
  ansible.builtin.debug:
    msg: "{{ drill.lines }}"

- name: Replay the whole archive (RPO of the archive, not of the backup)
  pgops.backup.restore_test:
    stanza: main
    name: archive
    target_type: latest
    heartbeat: required

- name: Restore last night's dumps of the nightly job, keep the copy if anything fails
  pgops.backup.restore_test:
    source: pg_dump
    dump_job: nightly
    keep_failed: true

- name: What would a drill do (restores nothing)
  pgops.backup.restore_test:
    stanza: main
  check_mode: true
  register: plan
'''

RETURN = r'''
status:
  description: C(ok) (every check passed or was skipped), C(failed), or C(planned) in check mode.
  returned: always
  type: str
  sample: ok
name:
  description: Name of the drill.
  returned: always
  type: str
  sample: pgbackrest
source:
  description: The source restored.
  returned: always
  type: str
  sample: pgbackrest
backup_label:
  description: Label of the pgBackRest backup set restored.
  returned: source pgbackrest
  type: str
  sample: 20261121-092940F_20261121-103000I
backup:
  description: The backup set (label, type, start, stop, lsn_stop, size, repo_key, reason).
  returned: source pgbackrest
  type: dict
dump_set:
  description: The dumps restored (job, destination, units with database, path, finished_at, format, encrypted, tables, rows_total).
  returned: source pg_dump
  type: dict
target:
  description: The recovery target (type, value, description).
  returned: source pgbackrest
  type: dict
checks:
  description: Every check in the order it ran.
  returned: when not in check mode
  type: list
  elements: dict
  contains:
    name:
      description:
        - C(source), C(restore), C(recovery), C(row_counts), C(isolation), C(heartbeat), C(amcheck), C(full_read),
          C(sql:NAME), C(checksums), C(cleanup).
      type: str
    database:
      description: The database of a per-database check.
      type: str
    status:
      description: C(pass), C(fail) or C(skip).
      type: str
    detail:
      description: The evidence, in words.
      type: str
    seconds:
      description: How long the check took.
      type: float
  sample:
    - {name: recovery, status: pass, seconds: 1.2, detail: "reached the end of the backup (immediate), then promote and promoted in 1.2 s"}
    - {name: amcheck, database: shop, status: pass, seconds: 0.8, detail: "no corruption: 280 relations, 900 pages checked"}
failed_checks:
  description: The checks that failed (C(amcheck shop), C(sql:orders exist)).
  returned: when not in check mode
  type: list
  elements: str
phases:
  description: Seconds per phase (preflight, initdb, restore, start, recovery, consistent_after, checks, stop, checksums, cleanup, total).
  returned: when not in check mode
  type: dict
  sample: {preflight: 0.4, restore: 3.1, start: 0.2, recovery: 1.3, checks: 4.2, stop: 0.3, checksums: 0.5, cleanup: 0.1, total: 10.1}
rto_seconds:
  description: Seconds from the start of the drill until the restored copy was usable (measured RTO).
  returned: when not in check mode
  type: float
rpo_seconds:
  description: Seconds between the last heartbeat in the restored copy and the start of the drill (measured RPO); null without a heartbeat.
  returned: when not in check mode
  type: float
scratch:
  description: The scratch instance (name, port, data_directory, log_file, state C(removed) or C(kept)).
  returned: always
  type: dict
kept:
  description: Whether the scratch instance was kept for inspection.
  returned: when not in check mode
  type: bool
error:
  description: What failed, naming every failed check.
  returned: when the drill failed
  type: str
lines:
  description: The report as lines of text (what C(pgops-backup restore-test) prints).
  returned: when not in check mode
  type: list
  elements: str
record:
  description: Path of the drill's record.
  returned: when not in check mode and O(record_dir) is set
  type: str
steps:
  description: In check mode, what the drill would do, in order.
  returned: check mode
  type: list
  elements: str
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.module_support import fail_from, module_runner
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.records import DEFAULT_RECORD_DIR
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill import (
    DRILL_TARGET_TYPES, SOURCES, Drill, DrillFailed, Settings)
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill_checks import HEARTBEAT_MODES
from ansible_collections.pgops.backup.plugins.module_utils.scratch import DEFAULT_BASE_DIR

SETTING_KEYS = ('source', 'name', 'stanza', 'config', 'backup_set', 'repo', 'target_type', 'target', 'dump_job',
                'dump_destination', 'passphrase_file', 'sql_checks', 'heartbeat', 'heartbeat_database', 'heartbeat_max_age',
                'amcheck', 'heapallindexed', 'full_read', 'checksums', 'keep_failed', 'scratch_base_dir', 'scratch_port',
                'timeout', 'pg_version', 'pg_cluster', 'jobs', 'scratch_reserve')


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type='str', default='pgbackrest', choices=list(SOURCES)),
            name=dict(type='str'),
            stanza=dict(type='str'),
            config=dict(type='path'),
            backup_set=dict(type='str'),
            repo=dict(type='int'),
            target_type=dict(type='str', default='immediate', choices=list(DRILL_TARGET_TYPES)),
            target=dict(type='str'),
            dump_job=dict(type='str'),
            dump_destination=dict(type='path'),
            passphrase_file=dict(type='path', no_log=False),
            passphrase=dict(type='str', no_log=True),
            sql_checks=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                query=dict(type='str', required=True),
                expected=dict(type='raw', required=True),
                database=dict(type='str', default='postgres'),
            )),
            heartbeat=dict(type='str', default='auto', choices=list(HEARTBEAT_MODES)),
            heartbeat_database=dict(type='str', default='postgres'),
            heartbeat_max_age=dict(type='str', default='5m'),
            amcheck=dict(type='bool', default=True),
            heapallindexed=dict(type='bool', default=True),
            full_read=dict(type='bool', default=True),
            checksums=dict(type='bool', default=True),
            keep_failed=dict(type='bool', default=False),
            scratch_base_dir=dict(type='path', default=DEFAULT_BASE_DIR),
            scratch_port=dict(type='int'),
            scratch_reserve=dict(type='str', default='auto'),
            timeout=dict(type='int', default=3600),
            pg_version=dict(type='str'),
            pg_cluster=dict(type='str', default='main'),
            jobs=dict(type='int', default=0),
            record_dir=dict(type='path', default=DEFAULT_RECORD_DIR),
            run_as=dict(type='str', default='postgres'),
        ),
        required_if=[('source', 'pgbackrest', ('stanza',))],
        mutually_exclusive=[('passphrase', 'passphrase_file')],
        supports_check_mode=True,
    )
    p = module.params
    runner = module_runner(module)
    try:
        settings = Settings(**dict((k, p[k]) for k in SETTING_KEYS))
        drill = Drill(runner, settings, record_dir=p['record_dir'], passphrase=p['passphrase'])
        if module.check_mode:
            plan = drill.run(check_mode=True)
            module.exit_json(changed=True, commands=runner.commands, **plan)
        report = drill.run()
    except DrillFailed as exc:
        report = dict(exc.report)
        report.pop('status', None)
        module.fail_json(msg=exc.report['error'], status='failed', **report)
    except EngineError as exc:
        fail_from(module, exc, runner, status='failed')
    module.exit_json(changed=True, **report)


if __name__ == '__main__':
    main()
