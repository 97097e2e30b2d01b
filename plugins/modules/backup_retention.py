#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: backup_retention
short_description: Calendar retention of pgBackRest backups, and keep marks
version_added: 0.2.0
description:
  - With O(policy), applies a calendar (grandfather-father-son) retention policy to the backups of a stanza, per repository.
    The rules keep full backups; differential and incremental backups follow their full backup. The newest good full,
    diff and incr backup, every backup with a keep mark and everything a kept backup depends on are never expired.
  - The sets the policy drops are expired with C(pgbackrest expire --set=LABEL --repo=N); pgBackRest removes them with their
    dependent backups and expires only the WAL older than the oldest remaining backup, so every kept backup keeps its WAL.
    pgBackRest's own count retention must be high for the policy to decide (the pgbackrest role does this when
    C(pgbackrest_retention_policy) is set).
  - With O(keep_set), marks a backup set to keep beyond the policy (the backup annotation C(pgops-keep) with who, when and why),
    or with O(release=true) removes the mark. Keep marks need pgBackRest 2.41 or later.
  - With O(dump_set), marks a pg_dump set (C(DESTINATION/DATABASE/STAMP)) to keep beyond the pg_dump retention, or releases
    it; the mark is a file beside the set, so the proven set itself is never touched.
  - Check mode is a dry run; the result lists, per backup, what keeps it or why it expires.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pgbackrest
options:
  stanza:
    description: Name of the stanza; required with O(policy) and O(keep_set).
    type: str
  repo:
    description: Only this repository (default - every repository of the stanza; for O(keep_set) every repository holding the set).
    type: int
  policy:
    description:
      - The calendar policy, a mapping of counts C(daily), C(weekly), C(monthly), C(yearly), C(hourly) (calendar buckets in UTC,
        ISO weeks), C(within) (a duration such as C(2d)) and C(rules) (a list of C({every, keep}) where C(every) is a calendar
        bucket or a duration such as C(6h)), or such a list itself.
      - Each rule keeps the newest good full backup of each of its C(keep) newest buckets that hold one.
      - Mutually exclusive with O(keep_set).
    type: raw
  keep_set:
    description: Label of the backup set to mark (or release with O(release=true)).
    type: str
  dump_set:
    description:
      - Directory of the pg_dump set to mark (or release with O(release=true)), C(DESTINATION/DATABASE/STAMP).
      - Mutually exclusive with O(policy) and O(keep_set).
    type: path
  reason:
    description: Why the set is kept (one line, at most 200 characters). Required to mark.
    type: str
  user:
    description: Who asks for the keep mark.
    type: str
  release:
    description: Remove the keep mark of O(keep_set) instead of setting it.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: The guides' model - daily for 14 days, weekly for 8 weeks, monthly for 12 months
  pgops.backup.backup_retention:
    stanza: main
    policy: {daily: 14, weekly: 8, monthly: 12}

- name: Keep a backup for an audit
  pgops.backup.backup_retention:
    stanza: main
    keep_set: 20261121-091140F
    reason: "audit 2026, ticket OPS-42"
    user: alice

- name: Keep a pg_dump set for an audit
  pgops.backup.backup_retention:
    dump_set: /var/backups/pgops-dump/app/20261121T021500Z
    reason: "audit 2026, ticket OPS-42"
    user: alice

- name: Release it
  pgops.backup.backup_retention:
    stanza: main
    keep_set: 20261121-091140F
    release: true
'''

RETURN = r'''
plans:
  description: Per repository, every backup with its decision.
  returned: with policy
  type: list
  elements: dict
  sample: [{"repo": 1, "stanza": "main", "kept": ["20261121-091140F"], "expired": ["20261001-010000F"],
            "expire_sets": ["20261001-010000F"],
            "backups": [{"label": "20261121-091140F", "type": "full", "action": "keep", "kept_by": ["daily", "newest good full"],
                         "reason": null, "keep_mark": null, "repo": 1, "stop": 1795252300, "time": 1795252300}]}]
expired:
  description: The sets expired (none in check mode).
  returned: with policy
  type: list
  elements: dict
  sample: [{"repo": 1, "set": "20261001-010000F"}]
marks:
  description: The keep marks set or released, per repository (with O(dump_set), one entry with C(set) instead of C(repo)).
  returned: with keep_set or dump_set
  type: list
  elements: dict
  sample: [{"repo": 1, "label": "20261121-091140F", "before": null, "after": "alice at 2026-11-21T10:00:00Z: audit", "changed": true}]
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils import backup_retention, dump_retention
from ansible_collections.pgops.backup.plugins.module_utils.module_support import (
    fail_from, module_pgbackrest, pgbackrest_common_argument_spec)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def mark_dump_set(module):
    """Mark or release one pg_dump set; exits the module."""
    params = module.params
    path = params['dump_set']
    try:
        result = dump_retention.mark_set(path, params['user'], params['reason'], release=params['release'],
                                         check_mode=module.check_mode)
    except (EngineError, OSError) as exc:
        module.fail_json(msg='keep mark of %s: %s' % (path, exc.full_message() if isinstance(exc, EngineError) else exc),
                         commands=[])
    module.exit_json(changed=result['changed'], marks=[result], diff={'before': result['before'] or '',
                                                                      'after': result['after'] or ''},
                     commands=[])


def main():
    argument_spec = pgbackrest_common_argument_spec()
    argument_spec.update(
        stanza=dict(type='str'),
        repo=dict(type='int'),
        policy=dict(type='raw'),
        keep_set=dict(type='str'),
        dump_set=dict(type='path'),
        reason=dict(type='str'),
        user=dict(type='str'),
        release=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('policy', 'keep_set', 'dump_set')],
                           required_one_of=[('policy', 'keep_set', 'dump_set')],
                           required_by={'policy': 'stanza', 'keep_set': 'stanza'})
    params = module.params
    if params['dump_set']:
        mark_dump_set(module)
    pgbr = module_pgbackrest(module, stanza=params['stanza'])
    try:
        if params['keep_set']:
            result = backup_retention.mark(pgbr, params['keep_set'], repo=params['repo'], user=params['user'],
                                           reason=params['reason'], release=params['release'],
                                           check_mode=module.check_mode)
            diff = {'before': dict(('repo%d' % m['repo'], m['before']) for m in result['marks']),
                    'after': dict(('repo%d' % m['repo'], m['after'] if m['changed'] else m['before'])
                                  for m in result['marks'])}
            module.exit_json(changed=result['changed'], marks=result['marks'], diff=diff,
                             commands=pgbr.runner.commands)
        result = backup_retention.apply(pgbr, params['policy'], repo=params['repo'], dry_run=module.check_mode)
    except EngineError as exc:
        fail_from(module, exc, pgbr.runner)
    gone = ['repo%d %s' % (p['repo'], label) for p in result['plans'] for label in p['expired']]
    diff = {'before': '\n'.join(sorted(gone + ['repo%d %s' % (p['repo'], label)
                                               for p in result['plans'] for label in p['kept']])) + '\n',
            'after': '\n'.join(sorted('repo%d %s' % (p['repo'], label)
                                      for p in result['plans'] for label in p['kept'])) + '\n'}
    module.exit_json(changed=result['changed'], plans=result['plans'], expired=result['expired'], diff=diff,
                     commands=pgbr.runner.commands)


if __name__ == '__main__':
    main()
