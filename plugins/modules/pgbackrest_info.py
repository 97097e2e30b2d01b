#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pgbackrest_info
short_description: Read pgBackRest stanzas, backups and WAL archive ranges
version_added: 0.1.0
description:
  - Summarises C(pgbackrest info --output=json) for one or every stanza.
  - Optionally lists the option names the installed pgBackRest accepts, so that configuration keys can be checked before they are written.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pgbackrest
options:
  stanza:
    description: Only this stanza. All configured stanzas when omitted.
    type: str
  supported_options:
    description: Also return RV(supported_options), read from C(pgbackrest help).
    type: bool
    default: false
  validate_options:
    description:
      - Option names (as written in C(pgbackrest.conf), e.g. C(repo2-s3-bucket)) that must be known to the installed pgBackRest.
      - The module fails, naming the unknown ones, when any is not.
    type: list
    elements: str
    default: []
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
- name: Read the backups of stanza main
  pgops.backup.pgbackrest_info:
    stanza: main
  register: backups

- name: Show the newest backup
  ansible.builtin.debug:
    msg: "{{ backups.stanzas[0].newest.label }}"

- name: Fail when an option name is unknown to this pgBackRest
  pgops.backup.pgbackrest_info:
    validate_options: [compress-type, repo1-retention-full]
'''

RETURN = r'''
version:
  description: Installed pgBackRest version.
  returned: always
  type: str
  sample: "2.45.0"
stanzas:
  description: One summary per stanza (see the C(stanza) return value of M(pgops.backup.pgbackrest_stanza)).
  returned: always
  type: list
  elements: dict
supported_options:
  description: Option names known to the installed pgBackRest, with indexes removed (C(repo-path), C(pg-port)).
  returned: when O(supported_options=true) or O(validate_options) is set
  type: list
  elements: str
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.module_support import (
    fail_from, module_pgbackrest, pgbackrest_common_argument_spec)
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import unknown_options
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def main():
    argument_spec = pgbackrest_common_argument_spec()
    argument_spec.update(
        stanza=dict(type='str'),
        supported_options=dict(type='bool', default=False),
        validate_options=dict(type='list', elements='str', default=[]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    pgbr = module_pgbackrest(module, stanza=module.params['stanza'])
    result = dict(changed=False)
    try:
        result['version'] = pgbr.version_string()
        if module.params['supported_options'] or module.params['validate_options']:
            supported = pgbr.supported_options()
            result['supported_options'] = sorted(supported)
            unknown = unknown_options(module.params['validate_options'], supported)
            if unknown:
                module.fail_json(msg='pgBackRest %s does not know the option(s): %s' % (
                    result['version'], ', '.join(unknown)), unknown_options=unknown,
                    hint='check the spelling against `pgbackrest help <command>`', commands=pgbr.runner.commands)
        if not module.params['validate_options'] or module.params['stanza']:
            result['stanzas'] = pgbr.info()
        else:
            result['stanzas'] = []
    except EngineError as exc:
        fail_from(module, exc, pgbr.runner)
    result['commands'] = pgbr.runner.commands
    module.exit_json(**result)


if __name__ == '__main__':
    main()
