# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.pgbackrest_stanza through main(), with run_command/get_bin_path as the boundary."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import ERROR_HINTS
from ansible_collections.pgops.backup.plugins.modules import pgbackrest_stanza
from ansible_collections.pgops.backup.tests.unit.fakes import fixture, info_doc, info_text, pgbackrest_fake, run_module

OK = fixture('info-ok-2.55.1.json')
NOBACKUP = fixture('info-nobackup-2.55.1.json')


def missing():
    doc = info_doc('info-missing-2.55.1.json')
    doc[0]['name'] = 'main'
    return info_text(doc)


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


def test_creates_the_stanza(monkeypatch):
    fake = pgbackrest_fake(info=[missing(), NOBACKUP]).on('stanza-create')
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main'}, fake)
    assert failed is False
    assert result['changed'] is True and result['actions'] == ['stanza-create']
    assert result['version'] == '2.55.1'
    assert result['stanza']['exists'] is True and result['stanza']['status_code'] == 2
    assert result['commands'] == ['/usr/bin/pgbackrest version', '/usr/bin/pgbackrest --stanza=main --output=json info',
                                  '/usr/bin/pgbackrest --stanza=main stanza-create',
                                  '/usr/bin/pgbackrest --stanza=main --output=json info']
    assert 'diff' not in result and 'check' not in result


def test_existing_stanza_unchanged(monkeypatch):
    fake = pgbackrest_fake('2.45', info=fixture('info-ok-2.45.json'))
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main'}, fake)
    assert failed is False and result['changed'] is False and result['actions'] == []
    assert result['version'] == '2.45.0'
    assert fake.pgbackrest_commands() == ['version', 'info']


def test_check_mode_with_diff(monkeypatch):
    fake = pgbackrest_fake(info=missing())
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main', 'check': True}, fake,
                                check_mode=True, diff=True)
    assert failed is False and result['changed'] is True
    assert fake.pgbackrest_commands() == ['version', 'info']
    assert result['diff'] == {
        'before': {'stanza': 'main', 'exists': False, 'status': 'missing stanza path', 'backups': []},
        'after': {'stanza': 'main', 'exists': True, 'status': 'missing stanza path', 'backups': []}}
    assert 'check' not in result


def test_check_runs_pgbackrest_check(monkeypatch):
    fake = pgbackrest_fake(info=OK).on('check')
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main', 'check': True}, fake)
    assert failed is False and result['changed'] is False
    assert result['check']['ok'] is True
    assert fake.pgbackrest_commands() == ['version', 'info', 'check']


def test_failing_check_reports_code_command_stderr_and_hint(monkeypatch):
    fake = pgbackrest_fake('2.45', info=fixture('info-ok-2.45.json'))
    fake.on('check', rc=37, err=fixture('check-missing-2.45.err'))
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main', 'check': True}, fake)
    assert failed is True
    assert '[037] (option-required): check command requires option: pg1-path' in result['msg']
    assert 'HINT: does this stanza exist?' in result['msg']
    assert result['cmd'] == '/usr/bin/pgbackrest --stanza=main check'
    assert result['rc'] == 37 and result['error_code'] == 37
    assert result['stderr'] == fixture('check-missing-2.45.err')
    assert result['hint'] == ERROR_HINTS[37][1]
    assert result['commands'][-1] == '/usr/bin/pgbackrest --stanza=main check'


@pytest.mark.parametrize('version', ['2.45', '2.55.1'])
def test_upgraded_up_to_date(monkeypatch, version):
    fake = pgbackrest_fake(version, info=fixture('info-ok-%s.json' % version))
    fake.on('stanza-upgrade', out=fixture('stanza-upgrade-uptodate-%s.out' % version))
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main', 'state': 'upgraded'}, fake)
    assert failed is False and result['changed'] is False
    assert fake.pgbackrest_commands() == ['version', 'info', 'stanza-upgrade']


def test_absent_without_force_is_refused(monkeypatch):
    fake = pgbackrest_fake(info=OK)
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main', 'state': 'absent'}, fake)
    assert failed is True
    assert result['msg'].startswith("refusing to delete stanza 'main': it holds 1 backup(s)")
    assert result['hint'] == 'set force=true to delete the stanza and every backup in it'
    assert fake.pgbackrest_commands() == ['version', 'info']
    assert 'cmd' not in result


def test_absent_with_force_and_diff(monkeypatch):
    fake = pgbackrest_fake(info=[OK, missing()]).on('stop').on('stanza-delete').on('start')
    failed, result = run_module(monkeypatch, pgbackrest_stanza,
                                {'stanza': 'main', 'state': 'absent', 'force': True}, fake, diff=True)
    assert failed is False and result['changed'] is True
    assert result['actions'] == ['stop', 'stanza-delete', 'start']
    assert fake.pgbackrest_commands() == ['version', 'info', 'stop', 'stanza-delete', 'start', 'info']
    assert result['diff']['before']['backups'] == ['20261121-091140F']
    assert result['diff']['after']['exists'] is False
    assert result['stanza']['exists'] is False


def test_absent_in_check_mode_deletes_nothing(monkeypatch):
    fake = pgbackrest_fake(info=OK)
    failed, result = run_module(monkeypatch, pgbackrest_stanza,
                                {'stanza': 'main', 'state': 'absent', 'force': True}, fake, check_mode=True, diff=True)
    assert failed is False and result['changed'] is True
    assert fake.pgbackrest_commands() == ['version', 'info']
    assert result['diff']['after']['exists'] is False and result['diff']['before']['exists'] is True
    assert result['stanza']['exists'] is True


def test_config_and_run_as(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    fake = pgbackrest_fake(info=OK)
    failed, result = run_module(monkeypatch, pgbackrest_stanza,
                                {'stanza': 'main', 'config': '/etc/pgbackrest/alt.conf', 'run_as': 'backup'}, fake)
    assert failed is False
    assert fake.argvs[1] == ['/usr/bin/runuser', '-u', 'backup', '--', '/usr/bin/pgbackrest',
                             '--config=/etc/pgbackrest/alt.conf', '--stanza=main', '--output=json', 'info']
    assert result['commands'][1] == '/usr/bin/pgbackrest --config=/etc/pgbackrest/alt.conf --stanza=main --output=json info'


def test_pgbackrest_not_installed(monkeypatch):
    fake = pgbackrest_fake(missing=['pgbackrest'])
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main'}, fake)
    assert failed is True
    assert result['msg'] == "required program 'pgbackrest' was not found on this host; next step: install the pgbackrest package"
    assert result['commands'] == [] and fake.calls == []


@pytest.mark.parametrize('name', ["ma'in", 'main db', '-main', 'a/b'])
def test_invalid_stanza_name_fails_before_anything_runs(monkeypatch, name):
    fake = pgbackrest_fake(info=OK).on('stanza-create')
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': name}, fake)
    assert failed is True and fake.calls == []
    assert result['msg'].startswith('invalid stanza name %r' % name) and result['error_code'] == 'stanza-name'


def test_run_as_root_fails_before_anything_runs(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    fake = pgbackrest_fake(info=OK)
    failed, result = run_module(monkeypatch, pgbackrest_stanza, {'stanza': 'main', 'run_as': 'root'}, fake)
    assert failed is True and fake.calls == [] and result['error_code'] == 'run-as-root'
