# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every pgops.backup module shares: the common argument spec and the engine's Runner built
on AnsibleModule (duck-typed, so this file needs no Ansible import either)."""

from .process import EngineError, Runner, EXTRA_PATHS
from .pgbackrest import PgBackRest
from .postgres import tool_user
from .stanza import validate_stanza_name


def pgbackrest_common_argument_spec():
    """Options documented by the pgops.backup.pgbackrest doc fragment."""
    return dict(
        config=dict(type='path'),
        run_as=dict(type='str', default='postgres'),
    )


def module_runner(module):
    def run(argv, env=None, data=None):
        return module.run_command(argv, environ_update=env or {}, data=data, check_rc=False,
                                  binary_data=False)

    def which(name):
        return module.get_bin_path(name, required=False, opt_dirs=list(EXTRA_PATHS))

    try:
        run_as = tool_user(module.params.get('run_as'))
    except EngineError as exc:
        fail_from(module, exc)
    return Runner(run=run, which=which, run_as=run_as)


def module_pgbackrest(module, stanza=None):
    """PgBackRest for the module's options; a stanza name pgBackRest's rules refuse fails the module
    before any command runs."""
    try:
        validate_stanza_name(stanza)
    except EngineError as exc:
        fail_from(module, exc)
    return PgBackRest(module_runner(module), stanza=stanza, config=module.params.get('config'))


def fail_from(module, exc, runner=None, **extra):
    """fail_json with the message, command, rc, stderr and next step of an EngineError."""
    details = exc.as_dict() if isinstance(exc, EngineError) else {'msg': str(exc)}
    if runner is not None:
        details['commands'] = runner.commands
    details.update(extra)
    module.fail_json(**details)
