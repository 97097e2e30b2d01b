# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets stay out of logs, --diff and command lines: role variables and module options carrying a
secret are no_log; tasks that write them show neither value nor diff; the notification hook's
credential check is the same in the host_tools role and the engine."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.pgops.backup.plugins.module_utils import cli

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
SECRET_WORDS = ('passphrase', 'password', 'secret', 'token', 'cipher_pass')
# Names that hold where a secret is, not the secret.
NOT_SECRET_SUFFIXES = ('_file', '_env', '_files', '_dir', '_path')


def load(*path):
    with open(os.path.join(ROOT, *path)) as handle:
        return yaml.safe_load(handle) or {}


def is_secret_name(name):
    name = name.lower()
    return any(w in name for w in SECRET_WORDS) and not name.endswith(NOT_SECRET_SUFFIXES)


def _role_specs():
    for role in ('host_tools', 'pg_dump'):
        options = load('roles', role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
        for name, spec in options.items():
            yield role, name, spec


@pytest.mark.parametrize('role, name, spec', [x for x in _role_specs() if is_secret_name(x[1])],
                         ids=lambda v: v if isinstance(v, str) else '')
def test_secret_role_variables_are_no_log(role, name, spec):
    assert spec.get('no_log') is True, '%s: %s needs no_log: true in meta/argument_specs.yml' % (role, name)


def test_the_roles_have_the_secret_variables_this_test_is_about():
    names = [name for _role, name, _spec in _role_specs() if is_secret_name(name)]
    assert 'pg_dump_passphrase' in names and 'host_tools_notify_secret' in names


def _tasks(role):
    folder = os.path.join(ROOT, 'roles', role, 'tasks')
    for name in sorted(os.listdir(folder)):
        for task in load('roles', role, 'tasks', name) or []:
            yield name, task


@pytest.mark.parametrize('role, variable', [('pg_dump', 'pg_dump_passphrase'),
                                            ('host_tools', 'host_tools_notify_secret'),
                                            ('host_tools', 'host_tools_notify_command')])
def test_tasks_writing_a_secret_show_neither_value_nor_diff(role, variable):
    found = 0
    for file_name, task in _tasks(role):
        writes = task.get('ansible.builtin.copy') or task.get('ansible.builtin.template')
        if not writes or variable not in yaml.safe_dump(task.get('ansible.builtin.copy') or {}):
            continue
        found += 1
        assert task.get('no_log') is True, '%s: %s' % (file_name, task['name'])
        assert task.get('diff') is False, '%s: %s' % (file_name, task['name'])
        assert str(writes.get('mode')) == '0600', '%s: %s' % (file_name, task['name'])
    assert found, 'no task writes %s' % variable


MODULE_OPTION_RE = re.compile(r'^\s+(\w+)=dict\((.*)\),?\s*$', re.MULTILINE)


def _module_options():
    folder = os.path.join(ROOT, 'plugins', 'modules')
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            with open(os.path.join(folder, name)) as handle:
                for option, body in MODULE_OPTION_RE.findall(handle.read()):
                    yield name, option, body


@pytest.mark.parametrize('module, option, body', [x for x in _module_options() if is_secret_name(x[1])])
def test_secret_module_options_are_no_log(module, option, body):
    assert 'no_log=True' in body, '%s: option %s must be no_log=True' % (module, option)


def test_some_module_has_a_passphrase_option():
    assert ('pg_dump_job.py', 'passphrase') in [(m, o) for m, o, _b in _module_options()]


SAMPLES_REFUSED = ['https://alice:s3cret@hooks.example.com/x', 'https://h.example/x?token=abc',
                   'https://h.example/x?a=1&api_key=abc', 'Authorization: Bearer abc',
                   'exec curl -H "Authorization: Bearer abc" https://h.example/x', 'https://h/x?sig=1']
SAMPLES_ACCEPTED = ['curl', '-fsS', '--data-binary', '@-', '--config', '/etc/pgops-backup/notify.secret',
                    'exec curl -H "X-Pgops-Unit: $PGOPS_UNIT" http://127.0.0.1:9099/pgops-hook',
                    'mail -s "backup job $PGOPS_UNIT failed" dba@example.com', 'https://h.example/x?a=1']


@pytest.mark.parametrize('arg', SAMPLES_REFUSED + SAMPLES_ACCEPTED)
def test_role_and_engine_agree_on_what_a_credential_looks_like(arg):
    pattern = load('roles', 'host_tools', 'vars', 'main.yml')['__host_tools_credential_pattern']
    by_role = re.search(pattern, arg) is not None
    by_engine = bool(cli.notify_command_problems([arg]))
    assert by_role == by_engine == (arg in SAMPLES_REFUSED)
