# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.pgbackrest_info through main().

(Named *_module so that it does not clash with module_utils/test_pgbackrest_info.py: the test
directories are not packages.)
"""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.modules import pgbackrest_info
from ansible_collections.pgops.backup.tests.unit.fakes import add_help, fixture, pgbackrest_fake, run_module


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


def test_all_stanzas(monkeypatch):
    fake = pgbackrest_fake(info=fixture('info-chain-2.55.1.json'))
    failed, result = run_module(monkeypatch, pgbackrest_info, {}, fake)
    assert failed is False and result['changed'] is False
    assert result['version'] == '2.55.1'
    assert result['stanzas'][0]['last_full']['label'] == '20261129-010002F'
    assert result['commands'] == ['/usr/bin/pgbackrest version', '/usr/bin/pgbackrest --output=json info']
    assert 'supported_options' not in result


def test_one_stanza_in_check_mode(monkeypatch):
    fake = pgbackrest_fake(info=fixture('info-missing-2.45.json'))
    failed, result = run_module(monkeypatch, pgbackrest_info, {'stanza': 'nope'}, fake, check_mode=True)
    assert failed is False
    assert result['stanzas'][0]['exists'] is False
    assert fake.argvs[1] == ['/usr/bin/pgbackrest', '--stanza=nope', '--output=json', 'info']


def test_supported_options(monkeypatch):
    fake = add_help(pgbackrest_fake(info=fixture('info-ok-2.55.1.json')), '2.55.1')
    failed, result = run_module(monkeypatch, pgbackrest_info, {'supported_options': True}, fake)
    assert failed is False
    assert len(result['supported_options']) == 125
    assert result['supported_options'] == sorted(result['supported_options'])
    assert {'repo-path', 'repo-sftp-host', 'pg-port'} <= set(result['supported_options'])
    assert len(result['stanzas']) == 1


def test_valid_options_without_stanza_do_not_read_info(monkeypatch):
    fake = add_help(pgbackrest_fake(), '2.55.1')
    failed, result = run_module(monkeypatch, pgbackrest_info,
                                {'validate_options': ['repo1-path', 'repo2-sftp-host', 'pg1-port', 'compress-type']}, fake)
    assert failed is False
    assert result['stanzas'] == []
    assert 'info' not in fake.pgbackrest_commands()


def test_unknown_options_fail(monkeypatch):
    fake = add_help(pgbackrest_fake('2.45'), '2.45')
    failed, result = run_module(monkeypatch, pgbackrest_info,
                                {'validate_options': ['repo1-path', 'repo2-sftp-host', 'compress-typ']}, fake)
    assert failed is True
    assert result['msg'] == 'pgBackRest 2.45.0 does not know the option(s): compress-typ, repo2-sftp-host'
    assert result['unknown_options'] == ['compress-typ', 'repo2-sftp-host']
    assert result['hint'] == 'check the spelling against `pgbackrest help <command>`'
    assert result['commands'][:2] == ['/usr/bin/pgbackrest version', '/usr/bin/pgbackrest help']


def test_info_failure(monkeypatch):
    fake = pgbackrest_fake().on('info', rc=37, out=fixture('check-missing-2.55.1.out'))
    failed, result = run_module(monkeypatch, pgbackrest_info, {'stanza': 'nope'}, fake)
    assert failed is True
    assert 'pgbackrest info failed with pgBackRest error [037]' in result['msg']
    assert result['cmd'] == '/usr/bin/pgbackrest --stanza=nope --output=json info'
    assert result['stdout'] == fixture('check-missing-2.55.1.out') and result['error_code'] == 37
