#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pgbackrest_stanza
short_description: Create, upgrade, check or delete a pgBackRest stanza
version_added: 0.1.0
description:
  - Brings a pgBackRest stanza to the wanted state in every configured repository.
  - Reads C(pgbackrest info --output=json) first, so a stanza that already exists is left alone and a second run reports no change.
  - Optionally runs C(pgbackrest check) to prove that WAL archiving works end to end.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pgbackrest
options:
  stanza:
    description:
      - Name of the stanza, as in the C([section]) of C(pgbackrest.conf).
      - 1 to 64 letters, digits, C(_), C(-) and C(.), starting with a letter, digit or C(_); anything else
        (a quote, a space, C(/), C([)) is refused before any command runs.
    type: str
    required: true
  state:
    description:
      - C(present) runs C(stanza-create) when the stanza does not exist yet.
      - C(upgraded) runs C(stanza-upgrade) after a PostgreSQL major upgrade; it reports a change only when pgBackRest upgraded something.
      - C(absent) stops pgBackRest for the stanza and deletes it with every backup and archived WAL; requires O(force=true).
    type: str
    choices: [present, upgraded, absent]
    default: present
  force:
    description: Confirms O(state=absent). Without it the module refuses to delete anything.
    type: bool
    default: false
  check:
    description:
      - Run C(pgbackrest check) after the stanza is in place (skipped in check mode, because it switches WAL).
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
- name: Create the stanza and prove that archiving works
  pgops.backup.pgbackrest_stanza:
    stanza: main
    check: true

- name: After pg_upgradecluster, upgrade the stanza
  pgops.backup.pgbackrest_stanza:
    stanza: main
    state: upgraded

- name: Decommission a stanza and all its backups
  pgops.backup.pgbackrest_stanza:
    stanza: old_cluster
    state: absent
    force: true
'''

RETURN = r'''
stanza:
  description: The stanza after the module ran, summarised from C(pgbackrest info --output=json).
  returned: always
  type: dict
  contains:
    name:
      description: Stanza name.
      type: str
    exists:
      description: Whether the stanza exists in the repository.
      type: bool
    ok:
      description: Whether pgBackRest reports the stanza status as ok.
      type: bool
    status_code:
      description: pgBackRest stanza status code (0 ok, 1 missing stanza path, 2 no valid backups, ...).
      type: int
    status_message:
      description: pgBackRest stanza status message.
      type: str
    backups:
      description: Every backup with label, type, start/stop epoch, sizes and WAL range.
      type: list
      elements: dict
    archive_min:
      description: Oldest archived WAL segment.
      type: str
    archive_max:
      description: Newest archived WAL segment.
      type: str
  sample: {"name": "main", "exists": true, "ok": true, "status_code": 0, "status_message": "ok",
           "backups": [], "archive_min": "000000010000000000000003", "archive_max": "000000010000000000000007"}
actions:
  description: pgBackRest commands the module ran (or would run in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["stanza-create"]
check:
  description: Result of C(pgbackrest check) when O(check=true) and not in check mode.
  returned: when O(check=true)
  type: dict
  sample: {"ok": true, "seconds": 1.4}
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
version:
  description: Version of the installed pgBackRest.
  returned: always
  type: str
  sample: "2.55.1"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.module_support import (
    fail_from, module_pgbackrest, pgbackrest_common_argument_spec)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.stanza import ensure_stanza


def _diff_view(summary):
    return {'stanza': summary['name'], 'exists': summary['exists'], 'status': summary['status_message'],
            'backups': [b['label'] for b in summary['backups']]}


def main():
    argument_spec = pgbackrest_common_argument_spec()
    argument_spec.update(
        stanza=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'upgraded', 'absent']),
        force=dict(type='bool', default=False),
        check=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    pgbr = module_pgbackrest(module, stanza=module.params['stanza'])
    try:
        version = pgbr.version_string()
        outcome = ensure_stanza(pgbr, state=module.params['state'], force=module.params['force'],
                                check=module.params['check'], check_mode=module.check_mode)
    except EngineError as exc:
        fail_from(module, exc, pgbr.runner)
    result = dict(
        changed=outcome['changed'],
        stanza=outcome['after'] or outcome['before'],
        actions=outcome['actions'],
        commands=pgbr.runner.commands,
        version=version,
    )
    if outcome['check'] is not None:
        result['check'] = outcome['check']
    if module._diff:
        after_view = _diff_view(outcome['after'] or outcome['before'])
        if module.check_mode and outcome['changed']:
            after_view['exists'] = module.params['state'] != 'absent'
        result['diff'] = dict(before=_diff_view(outcome['before']), after=after_view)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
