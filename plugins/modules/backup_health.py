#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: backup_health
short_description: Read a host's backup health and compare it with its objectives
version_added: 0.1.0
description:
  - Collects the same numbers as the C(pgops-backup metrics) timer of the P(pgops.backup.monitoring#role) role
    (one engine) from pgBackRest, every PostgreSQL cluster of the host (C(pg_stat_archiver) and the WAL
    files waiting in C(archive_status)) and the job records of pg_dump jobs and restore drills.
  - Compares them with the objectives and returns every breach; the module itself never fails because of a
    breach, so that a playbook can show the whole fleet before it fails (see C(playbooks/health.yml)).
  - Read-only.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pgbackrest
options:
  objectives:
    description:
      - Objectives that override those of O(objectives_file), by name.
      - Durations are seconds or a number with C(s), C(m), C(h), C(d) or C(w); C(off) switches one off.
      - V(full_backup_max_age), V(diff_backup_max_age), V(incr_backup_max_age) - the newest backup of the type must be younger.
      - V(backup_max_age) - the newest backup of any type must be younger.
      - V(wal_ready_max) - at most this many WAL files may wait to be archived.
      - V(archive_max_age) - a WAL file must have been archived within this time.
      - V(dump_max_age), V(drill_max_age) - a pg_dump job / restore drill must have succeeded within this time;
        a dict gives values per job or drill name with C(default) for the others.
    type: dict
    default: {}
  objectives_file:
    description: JSON file of objectives written by the monitoring role. Built-in defaults apply when it does not exist.
    type: path
    default: /etc/pgops-backup/monitoring.json
  record_dir:
    description: Directory of the job records.
    type: path
    default: /var/lib/pgops-backup/records
  state_file:
    description: File where the metrics timer remembers the last success of pg_dump jobs and restore drills (only read).
    type: path
    default: /var/lib/pgops-backup/metrics-state.json
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
- name: Read backup health with a stricter objective for the newest backup
  pgops.backup.backup_health:
    objectives:
      backup_max_age: 90m
  register: health

- name: Fail when an objective is breached
  ansible.builtin.assert:
    that: health.breaches | length == 0
    fail_msg: "{{ health.breaches | map(attribute='message') | join('; ') }}"
'''

RETURN = r'''
health:
  description:
    - The snapshot the metrics are rendered from, with C(stanzas) (status, and per repository the newest
      full/diff/incr/any backup with age, duration and sizes, and the WAL archive range), C(clusters)
      (C(pg_stat_archiver), C(wal_ready), C(failing)), C(dumps), C(drills), C(jobs), C(collectors) and C(objectives) in seconds,
      C(window) (the last C(pgops-backup window) record - first and latest recoverable point and WAL gaps per stanza and
      repository) and C(verify) (the last C(pgbackrest verify) per stanza).
  returned: always
  type: dict
breaches:
  description: Every objective breached, with C(objective), C(subject), C(message), C(value) and C(limit).
  returned: always
  type: list
  elements: dict
  sample:
    - objective: archiving
      subject: cluster 17/main
      message: "cluster 17/main: WAL archiving fails (12 failed attempts, last 00000001000000000000001A)"
      value: 12
      limit: 0
rows:
  description: One row per stanza with the columns of the fleet health table as text.
  returned: always
  type: list
  elements: dict
  sample:
    - stanza: main
      status: ok
      full: 1d 02h
      incr: 25m 10s
      newest: 25m 10s
      archiving: ok (0 waiting, last 40s ago)
      window: 13d 22h
      drill: ok 2d 01h ago
      dump: ok 20h 11m ago
metrics:
  description: The same snapshot in the Prometheus text exposition format.
  returned: always
  type: str
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils import metrics
from ansible_collections.pgops.backup.plugins.module_utils.module_support import (
    fail_from, module_runner, pgbackrest_common_argument_spec)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def main():
    argument_spec = pgbackrest_common_argument_spec()
    argument_spec.update(
        objectives=dict(type='dict', default={}),
        objectives_file=dict(type='path', default=metrics.DEFAULT_OBJECTIVES_FILE),
        record_dir=dict(type='path', default='/var/lib/pgops-backup/records'),
        state_file=dict(type='path', default=metrics.DEFAULT_STATE_FILE),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner = module_runner(module)
    try:
        objectives = metrics.load_objectives(module.params['objectives_file'], module.params['objectives'])
    except EngineError as exc:
        fail_from(module, exc, runner)
    snap = metrics.collect(runner, record_dir=module.params['record_dir'], objectives=objectives,
                           state=metrics.load_state(module.params['state_file']), config=module.params['config'])
    module.exit_json(changed=False, health=snap, breaches=metrics.evaluate(snap), rows=metrics.health_rows(snap),
                     metrics=metrics.render(snap), commands=runner.commands)


if __name__ == '__main__':
    main()
