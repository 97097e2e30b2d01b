#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pgbackrest_config
short_description: Write pgbackrest.conf and its conf.d files only after pgBackRest has proven them
version_added: 0.2.0
description:
  - Stages the new C(pgbackrest.conf) and conf.d files as a candidate (same owner and mode, in a private directory beside the live files).
  - Proves the candidate with the installed pgBackRest before any live file changes.
  - Every option value is parsed by C(pgbackrest help COMMAND) for every command and stanza (ranges, enums, types).
  - Every posix repository path must be creatable and writable.
  - For every stanza and repository kept on this host, C(archive.info) and C(backup.info) are read with the candidate, which catches
    a passphrase that cannot decrypt an existing repository, object store keys that are refused and an object store that is down.
  - Only then is each changed file renamed over the live one, atomically. On failure the live files are byte-for-byte unchanged.
  - The proofs never read the live files, so a live file broken by hand is repaired by a run with correct values.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  config:
    description: The live C(pgbackrest.conf).
    type: path
    default: /etc/pgbackrest/pgbackrest.conf
  include_path:
    description: The live conf.d directory; its other C(*.conf) files are part of the candidate as they are.
    type: path
    default: /etc/pgbackrest/conf.d
  content:
    description: The wanted content of C(pgbackrest.conf) (written C(0640), owner and group C(postgres)).
    type: str
    required: true
  include_files:
    description: conf.d files without secrets (C(0640), owner and group C(postgres)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: File name inside O(include_path).
        type: str
        required: true
      content:
        description: Its content.
        type: str
        required: true
  secret_files:
    description: conf.d files holding passphrases or keys (C(0600), owner C(postgres)); never logged, shown in a diff only as changed.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: File name inside O(include_path).
        type: str
        required: true
      content:
        description: Its content.
        type: str
        required: true
  stanzas:
    description: Stanzas whose sections are parsed and whose repositories are read with the candidate.
    type: list
    elements: str
    default: []
  repositories:
    description:
      - "Repositories kept on this host, for example C({index: 1, type: posix, path: /var/lib/pgbackrest})."
      - Missing posix repository directories are created for C(postgres) after the proof.
      - Empty on a database host whose repositories are on a repository host.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    details: The candidate is staged and proven in check mode too; only the swap is skipped.
  diff_mode:
    support: full
    details: Secret files show only that they change.
  platform:
    support: full
    platforms: posix
requirements:
  - pgBackRest installed on the managed host (the C(pgbackrest) package); run as root.
notes:
  - Commands are run as argument lists as C(postgres), never through a shell; they are returned in C(commands).
seealso:
  - module: pgops.backup.pg_config_file
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Write pgbackrest.conf once pgBackRest has proven it
  pgops.backup.pgbackrest_config:
    content: "{{ lookup('ansible.builtin.template', 'pgbackrest.conf.j2') }}"
    secret_files:
      - name: secrets.conf
        content: "{{ lookup('ansible.builtin.template', 'secrets.conf.j2') }}"
    stanzas: [main]
    repositories:
      - {index: 1, type: posix, path: /var/lib/pgbackrest}
'''

RETURN = r'''
files:
  description: Live files written (or, in check mode, that would be written).
  returned: always
  type: list
  elements: str
  sample: [/etc/pgbackrest/pgbackrest.conf]
directories:
  description: Posix repository directories created.
  returned: always
  type: list
  elements: str
problems:
  description: Why the candidate was refused (empty on success).
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

from ansible_collections.pgops.backup.plugins.module_utils.config_candidate import ManagedFile, PgBackRestConfigChange
from ansible_collections.pgops.backup.plugins.module_utils.module_support import fail_from, module_runner
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.stanza import validate_stanza_name

FILE_SPEC = dict(name=dict(type='str', required=True), content=dict(type='str', required=True))


def managed_files(params):
    files = [ManagedFile('pgbackrest.conf', params['content'])]
    files += [ManagedFile('conf.d/%s' % f['name'], f['content']) for f in params['include_files']]
    files += [ManagedFile('conf.d/%s' % f['name'], f['content'], mode=0o600, secret=True) for f in params['secret_files']]
    return files


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type='path', default='/etc/pgbackrest/pgbackrest.conf'),
            include_path=dict(type='path', default='/etc/pgbackrest/conf.d'),
            content=dict(type='str', required=True),
            include_files=dict(type='list', elements='dict', default=[], options=FILE_SPEC),
            secret_files=dict(type='list', elements='dict', default=[], options=FILE_SPEC, no_log=True),
            stanzas=dict(type='list', elements='str', default=[]),
            repositories=dict(type='list', elements='dict', default=[]),
        ),
        supports_check_mode=True,
    )
    runner = module_runner(module)
    result = dict(changed=False, files=[], directories=[], problems=[])
    try:
        for stanza in module.params['stanzas']:
            validate_stanza_name(stanza)
        change = PgBackRestConfigChange(runner, managed_files(module.params), config_path=module.params['config'],
                                        include_path=module.params['include_path'], stanzas=module.params['stanzas'],
                                        repositories=module.params['repositories'])
        pending = [change.live_path(f) for f in change.changed_files()]
        missing_dirs = change.missing_directories()
        if pending or missing_dirs:
            result['diff'] = change.diff()
            problems = change.prove()
            if problems:
                result['problems'] = problems
                module.fail_json(msg='The new pgBackRest configuration was refused; the live files are unchanged: '
                                     + '; '.join(problems), commands=runner.commands, **result)
            result['changed'] = True
            if module.check_mode:
                result['files'], result['directories'] = pending, missing_dirs
            else:
                result['directories'] = change.ensure_posix_directories()
                result['files'] = change.apply()
    except EngineError as exc:
        fail_from(module, exc, runner)
    result['commands'] = runner.commands
    module.exit_json(**result)


if __name__ == '__main__':
    main()
