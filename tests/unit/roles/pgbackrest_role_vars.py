# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgbackrest role's variables rendered by Ansible's own templar, for the role-vars unit tests."""

from __future__ import annotations

import os

import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'roles', 'pgbackrest')


def trust(value):
    """Role YAML values marked as templates, as Ansible marks what it reads from a role."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return dict((k, trust(v)) for k, v in value.items())
    if isinstance(value, list):
        return [trust(v) for v in value]
    return value


def render(expression, undefined=(), **overrides):
    """The value of a Jinja expression over the role's defaults and vars, as on one Debian 13 host;
    `undefined` names variables the play has not set yet."""
    variables = {}
    for name in ('defaults', 'vars'):
        with open(os.path.join(ROLE, name, 'main.yml')) as handle:
            variables.update(trust(yaml.safe_load(handle)))
    variables.update({
        'inventory_hostname': 'db1', 'groups': {'all': ['db1']}, 'ansible_play_hosts': ['db1'], 'hostvars': {},
        'ansible_facts': {'processor_vcpus': 2}, 'pgbackrest_cipher_pass': 'a-good-passphrase-0123456789',
        '__pgbackrest_cluster': {'data_directory': '/var/lib/postgresql/17/main', 'port': 5432,
                                 'service': 'postgresql@17-main.service'},
        '__pgbackrest_info': {'version': '2.55.1'}, 'host_tools_command': '/usr/local/bin/pgops-backup',
    })
    variables.update(trust(overrides))
    for name in undefined:
        variables.pop(name, None)
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template('{{ %s }}' % expression))
