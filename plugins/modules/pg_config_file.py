#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_config_file
short_description: Write a PostgreSQL conf.d file only after PostgreSQL has parsed it
version_added: 0.2.0
description:
  - Copies the cluster's configuration directory to a private temporary directory, puts the new file into its C(conf.d),
    and lets the cluster's own C(postgres -C) parse the whole configuration as the server would at start.
  - Only when PostgreSQL accepts it is the live file replaced, atomically; a value out of range, an unknown setting or a
    syntax error fails the task with PostgreSQL's message and leaves the live file byte-for-byte unchanged.
  - Reloading or restarting the server is left to the caller (notify a handler when the task changed).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  version:
    description: Major version of the cluster (C(pg_lsclusters)).
    type: str
    required: true
  cluster:
    description: Cluster name.
    type: str
    default: main
  name:
    description: File name inside the cluster's C(conf.d) directory.
    type: str
    required: true
  content:
    description: The wanted content.
    type: str
    required: true
  mode:
    description: File mode (owner and group C(postgres)).
    type: raw
    default: '0644'
attributes:
  check_mode:
    support: full
    details: The candidate is proven in check mode too; only the swap is skipped.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
requirements:
  - PostgreSQL from the Debian/Ubuntu packages (C(/etc/postgresql/VERSION/CLUSTER), C(/usr/lib/postgresql/VERSION/bin)).
seealso:
  - module: pgops.backup.pgbackrest_config
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Turn on WAL archiving once PostgreSQL has parsed the settings
  pgops.backup.pg_config_file:
    version: "17"
    name: archiving.conf
    content: |
      archive_mode = 'on'
      archive_command = 'pgbackrest --stanza=main archive-push %p'
  notify: Reload PostgreSQL
'''

RETURN = r'''
path:
  description: The live file.
  returned: always
  type: str
  sample: /etc/postgresql/17/main/conf.d/archiving.conf
problems:
  description: PostgreSQL's objections (empty on success).
  returned: always
  type: list
  elements: str
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.config_candidate import ManagedFile, PostgresConfFile
from ansible_collections.pgops.backup.plugins.module_utils.module_support import fail_from, module_runner
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            version=dict(type='str', required=True),
            cluster=dict(type='str', default='main'),
            name=dict(type='str', required=True),
            content=dict(type='str', required=True),
            mode=dict(type='raw', default='0644'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = module_runner(module)
    mode = params['mode']
    mode = int(mode, 8) if isinstance(mode, str) else int(mode)
    conf = PostgresConfFile(runner, '/etc/postgresql/%s/%s' % (params['version'], params['cluster']),
                            '/usr/lib/postgresql/%s/bin' % params['version'],
                            ManagedFile('conf.d/%s' % params['name'], params['content'], mode=mode))
    result = dict(changed=False, path=conf.live_path, problems=[])
    try:
        if conf.changed():
            result['diff'] = conf.diff()
            problems = conf.prove()
            if problems:
                result['problems'] = problems
                module.fail_json(msg='; '.join(problems) + '; the live file is unchanged', commands=runner.commands,
                                 **result)
            result['changed'] = True
            if not module.check_mode:
                conf.apply()
    except EngineError as exc:
        fail_from(module, exc, runner)
    result['commands'] = runner.commands
    module.exit_json(**result)


if __name__ == '__main__':
    main()
