#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: engine_install
short_description: Install the pgops.backup engine on a host for the pgops-backup command
version_added: 0.1.0
description:
  - Writes the engine (the collection's C(module_utils), exactly the code this module was shipped with) into a Python package directory on the host,
    so that the C(pgops-backup) command run by systemd timers is the same code the modules run.
  - Only files whose content differs are written; files of the package that the engine no longer has are removed.
  - Used by the M(pgops.backup.host_tools) role; one call instead of one transfer per file.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  dest:
    description: Package directory to write (created when missing, mode 0755).
    type: path
    required: true
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
- name: Install the engine
  pgops.backup.engine_install:
    dest: /usr/local/lib/pgops-backup/pgops_engine
'''

RETURN = r'''
files:
  description: Engine files in the package after the run.
  returned: always
  type: list
  elements: str
  sample: ["__init__.py", "backup.py", "cli.py"]
written:
  description: Files written (or that would be written in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: Stale files removed (or that would be removed in check mode).
  returned: always
  type: list
  elements: str
'''

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes

# Every engine file is imported here so that it travels with this module; a unit test checks that
# this list names every file of plugins/module_utils.
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    backup, cli, module_support, pgbackrest, postgres, process, records, stanza,
)
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    cli_dump, dump_crypto, dump_manifest, dump_restore, dump_retention, dump_session, pg_dump,
)
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    cli_pitr, pgserver, pitr, recovery, restore_point, scratch, wal,
)
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    cli_drill, restore_drill, restore_drill_checks, restore_drill_scratch, restore_drill_sources,
)
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    cli_metrics, metrics, cli_window, recovery_window,
)
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    clock, cluster_lock, config_candidate,
)
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    cli_retention, backup_retention, retention_policy,
)
from ansible_collections.pgops.backup.plugins.module_utils import (  # noqa: F401 pylint: disable=unused-import
    cli_evidence, evidence, cli_output,
)

ENGINE = (backup, cli, module_support, pgbackrest, postgres, process, records, stanza,
          cli_dump, dump_crypto, dump_manifest, dump_restore, dump_retention, dump_session, pg_dump,
          cli_pitr, pgserver, pitr, recovery, restore_point, scratch, wal,
          cli_drill, restore_drill, restore_drill_checks, restore_drill_scratch, restore_drill_sources,
          cli_metrics, metrics, cli_window, recovery_window,
          cli_retention, backup_retention, retention_policy,
          clock, cluster_lock, config_candidate,
          cli_evidence, evidence, cli_output)


def engine_sources():
    sources = {'__init__.py': b''}
    for mod in ENGINE:
        name = mod.__name__.rsplit('.', 1)[-1] + '.py'
        # The loader's source: on a managed host the engine is imported from AnsiballZ's zip payload.
        get_source = getattr(mod.__loader__, 'get_source', None)
        source = get_source(mod.__name__) if get_source else None
        if source is None:  # a loader without source (e.g. pytest's assertion rewriting): read the file
            with open(mod.__file__, 'rb') as handle:
                source = handle.read()
        sources[name] = to_bytes(source)
    return sources


def _write(path, data):
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=os.path.dirname(path))
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def main():
    module = AnsibleModule(argument_spec=dict(dest=dict(type='path', required=True)), supports_check_mode=True)
    dest = module.params['dest']
    sources = engine_sources()
    present = sorted(f for f in os.listdir(dest) if f.endswith('.py')) if os.path.isdir(dest) else []
    written = []
    for name, data in sorted(sources.items()):
        path = os.path.join(dest, name)
        current = None
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                current = handle.read()
        if current != data:
            written.append(name)
    removed = [f for f in present if f not in sources]
    changed = bool(written or removed)
    if changed and not module.check_mode:
        if not os.path.isdir(dest):
            os.makedirs(dest, 0o755)
        for name in written:
            _write(os.path.join(dest, name), sources[name])
        for name in removed:
            os.unlink(os.path.join(dest, name))
    result = dict(changed=changed, files=sorted(sources), written=written, removed=removed)
    if module._diff:
        result['diff'] = dict(before={'files': present}, after={'files': sorted(sources)},
                              before_header=dest, after_header=dest)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
