#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pgbackrest_backup
short_description: Take a pgBackRest backup now
version_added: 0.1.0
description:
  - Runs C(pgbackrest backup) for a stanza and returns the backup it produced, read back from C(pgbackrest info).
  - pgBackRest turns an incremental or differential backup into a full one when no full backup exists; RV(backup.type) reports what was taken.
  - In check mode nothing is run; the module reports that a backup would be taken.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pgbackrest
options:
  stanza:
    description:
      - Name of the stanza.
      - 1 to 64 letters, digits, C(_), C(-) and C(.), starting with a letter, digit or C(_); anything else
        (a quote, a space, C(/), C([)) is refused before any command runs.
    type: str
    required: true
  type:
    description: Backup type.
    type: str
    choices: [full, diff, incr]
    default: incr
  annotations:
    description: Key/value annotations stored with the backup (for example the ticket that asked for it).
    type: dict
    default: {}
  repo:
    description: Repository number to back up to. pgBackRest's default (the highest-priority repository) when omitted.
    type: int
  start_fast:
    description: Force a checkpoint so the backup starts at once. pgBackRest's configured value when omitted.
    type: bool
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Full backup before a risky migration
  pgops.backup.pgbackrest_backup:
    stanza: main
    type: full
    annotations:
      reason: before-migration
  register: backup

- name: Show what was taken
  ansible.builtin.debug:
    msg: "{{ backup.backup.label }}: {{ backup.backup.size | human_readable }} in {{ backup.seconds }} s"
'''

RETURN = r'''
backup:
  description: The new backup as C(pgbackrest info) reports it.
  returned: success, not in check mode
  type: dict
  contains:
    label:
      description: Backup label.
      type: str
    type:
      description: Type actually taken (full, diff or incr).
      type: str
    size:
      description: Size of the database files in the backup, in bytes.
      type: int
    repo_size:
      description: Size of the backup in the repository (compressed), in bytes.
      type: int
    duration_seconds:
      description: Time between the backup's start and stop timestamps.
      type: int
    wal_start:
      description: First WAL segment the backup needs.
      type: str
    wal_stop:
      description: Last WAL segment the backup needs.
      type: str
  sample: {"label": "20261121-101500F", "type": "full", "size": 31948800, "repo_size": 4063232,
           "duration_seconds": 3, "wal_start": "000000010000000000000004", "wal_stop": "000000010000000000000004"}
seconds:
  description: Wall time of the backup command.
  returned: success, not in check mode
  type: float
  sample: 3.2
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.backup import BACKUP_TYPES, backup_options, run_backup
from ansible_collections.pgops.backup.plugins.module_utils.module_support import (
    fail_from, module_pgbackrest, pgbackrest_common_argument_spec)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def main():
    argument_spec = pgbackrest_common_argument_spec()
    argument_spec.update(
        stanza=dict(type='str', required=True),
        type=dict(type='str', default='incr', choices=list(BACKUP_TYPES)),
        annotations=dict(type='dict', default={}),
        repo=dict(type='int'),
        start_fast=dict(type='bool'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    pgbr = module_pgbackrest(module, stanza=params['stanza'])
    try:
        if module.check_mode:
            stanza = pgbr.stanza_info()
            options = backup_options(params['type'], params['annotations'], params['repo'], params['start_fast'])
            module.exit_json(changed=True, would_run=pgbr.argv('backup', *options), stanza_exists=stanza['exists'],
                             commands=pgbr.runner.commands)
        outcome = run_backup(pgbr, params['type'], params['annotations'], params['repo'], params['start_fast'])
    except EngineError as exc:
        fail_from(module, exc, pgbr.runner)
    module.exit_json(changed=True, backup=outcome['backup'], seconds=outcome['seconds'],
                     stanza=outcome['stanza'], commands=pgbr.runner.commands)


if __name__ == '__main__':
    main()
