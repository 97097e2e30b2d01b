# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.pgbackrest_backup through main()."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import ERROR_HINTS
from ansible_collections.pgops.backup.plugins.modules import pgbackrest_backup
from ansible_collections.pgops.backup.tests.unit.fakes import fixture, info_with_backups, pgbackrest_fake, run_module

F1 = '20261121-091140F'
D1 = F1 + '_20261122-013002D'
OK = fixture('info-ok-2.55.1.json')
LOCK = ("P00  ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/main-backup.lock': "
        "Resource temporarily unavailable\n            HINT: is another pgBackRest process running?\n")


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


def test_backup_taken(monkeypatch):
    fake = pgbackrest_fake(info=[OK, info_with_backups('info-chain-2.55.1.json', [F1, D1])]).on('backup')
    args = {'stanza': 'main', 'type': 'diff', 'annotations': {'reason': 'before-migration'}, 'repo': 1,
            'start_fast': True}
    failed, result = run_module(monkeypatch, pgbackrest_backup, args, fake)
    assert failed is False and result['changed'] is True
    assert result['backup']['label'] == D1 and result['backup']['type'] == 'diff'
    assert result['backup']['size'] == 23881029
    assert result['stanza']['backup_count'] == 2
    assert isinstance(result['seconds'], float)
    assert result['commands'][1] == ('/usr/bin/pgbackrest --stanza=main --log-level-console=info --type=diff '
                                     '--annotation=reason=before-migration --repo=1 --start-fast backup')


def test_check_mode_takes_no_backup(monkeypatch):
    fake = pgbackrest_fake(info=OK)
    failed, result = run_module(monkeypatch, pgbackrest_backup, {'stanza': 'main', 'type': 'full', 'start_fast': False},
                                fake, check_mode=True)
    assert failed is False and result['changed'] is True
    assert result['would_run'] == ['/usr/bin/pgbackrest', '--stanza=main', '--type=full', '--no-start-fast', 'backup']
    assert result['stanza_exists'] is True
    assert fake.pgbackrest_commands() == ['info']
    assert 'backup' not in result


def test_failure_reports_code_command_output_and_hint(monkeypatch):
    fake = pgbackrest_fake(info=OK).on('backup', rc=50, out=LOCK)
    failed, result = run_module(monkeypatch, pgbackrest_backup, {'stanza': 'main'}, fake)
    assert failed is True
    assert result['msg'].startswith('pgbackrest backup failed with pgBackRest error [050] (lock-acquire): '
                                    "unable to acquire lock on file '/tmp/pgbackrest/main-backup.lock'")
    assert 'HINT: is another pgBackRest process running?' in result['msg']
    assert result['cmd'] == '/usr/bin/pgbackrest --stanza=main --log-level-console=info --type=incr backup'
    assert result['rc'] == 50 and result['error_code'] == 50 and result['stdout'] == LOCK
    assert result['hint'] == ERROR_HINTS[50][1]


def test_no_new_backup_fails(monkeypatch):
    fake = pgbackrest_fake(info=OK).on('backup')
    failed, result = run_module(monkeypatch, pgbackrest_backup, {'stanza': 'main', 'type': 'full'}, fake)
    assert failed is True
    assert result['msg'].startswith('pgbackrest backup exited 0 but no new backup appears in info')
    assert len(result['commands']) == 3


def test_type_is_validated_by_the_argument_spec(monkeypatch):
    fake = pgbackrest_fake(info=OK)
    failed, result = run_module(monkeypatch, pgbackrest_backup, {'stanza': 'main', 'type': 'bogus'}, fake)
    assert failed is True
    assert 'value of type must be one of: full, diff, incr' in result['msg']
    assert fake.calls == []


@pytest.mark.parametrize('name', ["ma'in", 'x"; rm -rf /', '[main]'])
def test_invalid_stanza_name_fails_before_anything_runs(monkeypatch, name):
    fake = pgbackrest_fake(info=fixture('info-ok-2.55.1.json')).on('backup')
    failed, result = run_module(monkeypatch, pgbackrest_backup, {'stanza': name}, fake)
    assert failed is True and fake.calls == []
    assert result['msg'].startswith('invalid stanza name %r' % name) and 'rename the stanza' in result['hint']
