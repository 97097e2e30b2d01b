#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_dump_job
short_description: Take provable logical backups with pg_dump
version_added: 0.1.0
description:
  - Dumps one database, a list, or every connectable non-template database, plus the globals (roles,
    tablespaces) from C(pg_dumpall --globals-only), into O(destination)C(/DATABASE/STAMP/).
  - Before each dump a session opens a C(REPEATABLE READ) transaction, exports its snapshot and counts
    the rows of every table in it; pg_dump runs with C(--snapshot) while that transaction stays open, so
    the manifest's counts are exactly what the dump holds and a restore can be compared with them.
  - A dump is written under a temporary name and renamed into place only after pg_dump succeeded (by
    exit code and by its messages), C(pg_restore --list) read it back, every file was checksummed
    (sha256) and optionally encrypted, and C(manifest.json) was written. On failure the partial output
    is removed and earlier dumps are left as they were.
  - Retention keeps the newest O(retention_count) good dumps and/or those younger than
    O(retention_max_age), or, with O(retention_policy), those a calendar policy keeps; the newest good
    dump of each database and every dump set with a keep mark are never deleted.
  - In check mode nothing is written; the module reports what would be dumped and pruned.
  - The same engine runs as C(pgops-backup dump) from the systemd timers that the C(pgops.backup.pg_dump) role installs.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pg_dump
options:
  destination:
    description:
      - Directory that receives the dumps (created with mode 0700 for O(run_as) when missing).
    type: path
    required: true
  databases:
    description:
      - Databases to dump. Every database that accepts connections and is not a template when empty.
    type: list
    elements: str
    default: []
  format:
    description:
      - pg_dump output format. C(directory) dumps tables in parallel (O(jobs)); C(plain) is plain SQL, uncompressed.
    type: str
    choices: [custom, directory, plain]
    default: custom
  compression:
    description:
      - Compression method. C(auto) picks the fastest sensible one for the installed pg_dump
        (zstd level 3 from PostgreSQL 16, gzip level 1 before), never gzip level 9.
      - C(lz4) and C(zstd) need pg_dump 16 or later; older versions are refused before anything runs.
    type: str
    choices: [auto, none, gzip, lz4, zstd]
    default: auto
  compression_level:
    description:
      - Level for the compression method (gzip 1-9, lz4 1-12, zstd 1-22). The method's fast default when omitted.
    type: int
  jobs:
    description:
      - Parallel pg_dump jobs for the C(directory) format. C(0) means the number of cores (at most 8).
    type: int
    default: 0
  globals:
    description:
      - Also dump roles and tablespaces (C(pg_dumpall --globals-only)); a copy goes with every database's dump.
    type: bool
    default: true
  exclude_table_data:
    description:
      - pg_dump patterns of tables whose definition is dumped without their rows (C(--exclude-table-data)).
      - The manifest marks those tables; a restore expects them empty.
    type: list
    elements: str
    default: []
  extra_options:
    description:
      - Further pg_dump options, each one list item in long form (C(--no-comments), C(--exclude-schema=audit)).
      - Checked against the installed pg_dump's C(--help) and refused when unknown, when the job sets them
        itself (file, format, compress, jobs, snapshot, connection) or when they break the snapshot.
      - Options that leave part of the database out (C(--schema-only), C(--exclude-table=...),
        C(--exclude-schema=...), C(--table=...), ...) make the dumps partial (RV(dumps[].partial)).
    type: list
    elements: str
    default: []
  encrypt:
    description:
      - Encrypt every output file with gpg (symmetric, AES256). The manifest records the checksums of the encrypted files.
      - Needs O(passphrase) or O(passphrase_file).
    type: bool
    default: false
  passphrase:
    description:
      - Encryption passphrase. Given to gpg on its standard input, never on a command line.
    type: str
  passphrase_file:
    description:
      - File holding the encryption passphrase (its first line); refused unless only its owner can read it.
    type: path
  retention_count:
    description:
      - Good dumps kept per database, newest first. C(0) means no limit.
    type: int
    default: 0
  retention_max_age:
    description:
      - Dumps that finished longer ago than this are deleted, for example C(14d), C(36h), C(2w); a plain number means days.
      - The newest good dump of a database is kept even when it is older.
    type: str
  retention_policy:
    description:
      - >-
        A calendar (grandfather-father-son) policy that replaces O(retention_count) and O(retention_max_age), for example
        C({daily: 14, weekly: 8, monthly: 12}); counts C(hourly), C(daily), C(weekly), C(monthly), C(yearly) (UTC calendar
        buckets, ISO weeks), C(within) (a duration) and C(rules) (a list of C({every, keep})). See docs/retention.md.
      - Each rule keeps the newest complete dump of each of its C(keep) newest buckets; partial dumps are never kept by a rule.
      - A policy the engine cannot read is refused before anything is dumped or deleted.
    type: raw
  prune_only:
    description:
      - Apply retention to the destination's dumps (those of O(databases), or all) without dumping.
    type: bool
    default: false
  job:
    description:
      - Job name recorded in each manifest.
    type: str
    default: ansible
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: pgops.backup.pg_dump_restore
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Dump every database before an upgrade, keep the last 3
  pgops.backup.pg_dump_job:
    destination: /var/backups/pgops-dump
    retention_count: 3
  register: dump

- name: Show what was taken
  ansible.builtin.debug:
    msg: "{{ item.database }}: {{ item.rows_total }} rows, {{ item.size_bytes | human_readable }} in {{ item.path }}"
  loop: "{{ dump.dumps }}"

- name: Parallel, encrypted dump of one large database without the audit log rows
  pgops.backup.pg_dump_job:
    destination: /srv/dumps
    databases: [shop]
    format: directory
    jobs: 4
    exclude_table_data: ["audit.log_*"]
    extra_options: ["--no-comments"]
    encrypt: true
    passphrase: "{{ vault_dump_passphrase }}"
    retention_max_age: 14d

- name: The guides' calendar model for dumps - daily for 14 days, weekly for 8 weeks, monthly for 12 months
  pgops.backup.pg_dump_job:
    destination: /var/backups/pgops-dump
    retention_policy: {daily: 14, weekly: 8, monthly: 12}

- name: Only apply retention
  pgops.backup.pg_dump_job:
    destination: /var/backups/pgops-dump
    prune_only: true
    retention_max_age: 30d
'''

RETURN = r'''
dumps:
  description: The good dumps taken by this run.
  returned: success, not in check mode
  type: list
  elements: dict
  contains:
    database:
      description: Database name.
      type: str
    path:
      description: Directory of this dump (with C(manifest.json)).
      type: str
    dump_path:
      description: The pg_dump output (file, or directory for the directory format).
      type: str
    manifest:
      description: Path of the manifest.
      type: str
    files:
      description: Every file with its path (relative to RV(dumps[].path)), size, sha256 and role (dump or globals).
      type: list
      elements: dict
    size_bytes:
      description: Total size of the files.
      type: int
    rows_total:
      description: Rows the dump holds (sum over the tables whose data was dumped), counted in the dump's snapshot.
      type: int
    table_count:
      description: Tables counted (partitions included, partitioned parents excluded).
      type: int
    large_objects:
      description: Large objects in the database.
      type: int
    duration_seconds:
      description: Wall time of this database's dump, checks included.
      type: float
    dump_seconds:
      description: Wall time of pg_dump alone.
      type: float
    count_seconds:
      description: Time the row counts took (they run on the server while pg_dump runs).
      type: float
    encrypted:
      description: Whether the files are gpg-encrypted.
      type: bool
    warnings:
      description: Warnings pg_dump printed.
      type: list
      elements: str
    partial:
      description:
        - Whether an extra option left part of the database out (C(--schema-only), C(--exclude-table),
          C(--exclude-schema), ...). Retention never takes a partial dump for the last good one.
      type: bool
    partial_reasons:
      description: The options that make the dump partial, each with what is missing.
      type: list
      elements: str
  sample: [{"database": "shop", "path": "/var/backups/pgops-dump/shop/20261121T020000Z", "size_bytes": 8716288,
            "rows_total": 1000000, "table_count": 24, "duration_seconds": 2.4, "encrypted": false}]
failed:
  description: Databases whose dump failed (the module then fails), with the error.
  returned: always, not in check mode
  type: list
  elements: dict
pruned:
  description: Dump directories deleted by retention.
  returned: success, not in check mode
  type: list
  elements: str
size_bytes:
  description: Total size of this run's dumps.
  returned: success, not in check mode
  type: int
duration_seconds:
  description: Wall time of the run.
  returned: success, not in check mode
  type: float
databases:
  description: Databases the run covers.
  returned: success, unless O(prune_only)
  type: list
  elements: str
compression:
  description: Compression method used (C(auto) resolved).
  returned: success, unless O(prune_only)
  type: str
  sample: zstd
compression_level:
  description: Compression level used.
  returned: success, unless O(prune_only)
  type: int
  sample: 3
pg_dump_version:
  description: C(pg_dump --version) of the host.
  returned: success, unless O(prune_only)
  type: str
server_version_num:
  description: The server's C(server_version_num).
  returned: success, unless O(prune_only)
  type: int
would_dump:
  description: In check mode, each database with the directory and pg_dump command it would get.
  returned: check mode
  type: list
  elements: dict
partial:
  description: In check mode, whether the run's dumps would be partial (see RV(dumps[].partial)).
  returned: check mode
  type: bool
partial_reasons:
  description: In check mode, the options that would make the dumps partial.
  returned: check mode
  type: list
  elements: str
would_prune:
  description: In check mode, the dump directories retention would delete after this run.
  returned: check mode
  type: list
  elements: str
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.pgops.backup.plugins.module_utils.dump_crypto import load_passphrase
from ansible_collections.pgops.backup.plugins.module_utils.dump_session import HAS_PSYCOPG2, PSYCOPG2_IMPORT_ERROR
from ansible_collections.pgops.backup.plugins.module_utils.module_support import fail_from, module_runner
from ansible_collections.pgops.backup.plugins.module_utils.pg_dump import (
    COMPRESSION_METHODS, FORMATS, Connection, DumpJob, connection_argument_spec, os_failure)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        destination=dict(type='path', required=True),
        databases=dict(type='list', elements='str', default=[]),
        format=dict(type='str', default='custom', choices=list(FORMATS)),
        compression=dict(type='str', default='auto', choices=list(COMPRESSION_METHODS)),
        compression_level=dict(type='int'),
        jobs=dict(type='int', default=0),
        globals=dict(type='bool', default=True),
        exclude_table_data=dict(type='list', elements='str', default=[]),
        extra_options=dict(type='list', elements='str', default=[]),
        encrypt=dict(type='bool', default=False),
        passphrase=dict(type='str', no_log=True),
        passphrase_file=dict(type='path', no_log=False),
        retention_count=dict(type='int', default=0),
        retention_max_age=dict(type='str'),
        retention_policy=dict(type='raw'),
        prune_only=dict(type='bool', default=False),
        job=dict(type='str', default='ansible'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[('passphrase', 'passphrase_file')],
        required_if=[('encrypt', True, ('passphrase', 'passphrase_file'), True)],
    )
    params = module.params
    if not HAS_PSYCOPG2 and not module.check_mode and not params['prune_only']:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=str(PSYCOPG2_IMPORT_ERROR))
    runner = module_runner(module)
    try:
        passphrase = None
        if params['encrypt']:
            passphrase = load_passphrase(passphrase=params['passphrase'], passphrase_file=params['passphrase_file'])
        job = DumpJob(
            runner, params['destination'], databases=params['databases'], fmt=params['format'],
            compression=params['compression'], compression_level=params['compression_level'], jobs=params['jobs'],
            exclude_table_data=params['exclude_table_data'], extra_options=params['extra_options'],
            include_globals=params['globals'], passphrase=passphrase, retention_count=params['retention_count'],
            retention_max_age=params['retention_max_age'], retention_policy=params['retention_policy'],
            connection=Connection(params['port'], params['host'], params['user'], params['passfile']),
            bin_dir=params['bin_dir'], job=params['job'])
        if params['prune_only']:
            if module.check_mode:
                would = job.prune(dry_run=True)
                module.exit_json(changed=bool(would), would_prune=would, commands=runner.commands)
            pruned = job.prune()
            module.exit_json(changed=bool(pruned), pruned=pruned, commands=runner.commands)
        if module.check_mode:
            plan = job.plan()
            module.exit_json(changed=True, commands=runner.commands, **plan)
        result = job.run()
    except (EngineError, OSError) as exc:
        fail_from(module, os_failure(exc, 'pg_dump_job'), runner)
    if result['failed']:
        fail_from(module, job.errors[0], runner, dumps=result['dumps'], failed=result['failed'],
                  pruned=result['pruned'])
    module.exit_json(changed=True, commands=runner.commands, **result)


if __name__ == '__main__':
    main()
