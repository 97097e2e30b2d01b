# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.pg_dump_job and pg_dump_restore through main()."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest as layout
from ansible_collections.pgops.backup.plugins.module_utils import dump_restore as restore_engine
from ansible_collections.pgops.backup.plugins.module_utils import pg_dump as engine
from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.modules import pg_dump_job, pg_dump_restore
from ansible_collections.pgops.backup.tests.unit.fakes import run_module
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as fakes

SECRET = 'module-test-passphrase-0042'


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


@pytest.fixture
def sessions(monkeypatch):
    made = fakes.Sessions()
    monkeypatch.setattr(engine, 'session_factory', lambda *a, **kw: made)
    monkeypatch.setattr(restore_engine, 'session_factory', lambda *a, **kw: made)
    return made


def test_dump_returns_files_counts_and_commands(monkeypatch, tmp_path, sessions):
    host = fakes.FakeHost(databases=['appdb', 'Reports \u00dc'])
    failed, result = run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path), 'retention_count': 2}, host)
    assert failed is False and result['changed'] is True
    assert [d['database'] for d in result['dumps']] == ['appdb', 'Reports \u00dc']
    dump = result['dumps'][0]
    assert dump['rows_total'] == 1108 and dump['table_count'] == 5
    assert [f['path'] for f in dump['files']] == ['appdb.dump', 'globals.sql']
    assert all(len(f['sha256']) == 64 for f in dump['files'])
    assert result['compression'] == 'zstd' and result['compression_level'] == 3 and result['failed'] == []
    assert any('--snapshot=' in c for c in result['commands'])


def test_check_mode_reports_and_writes_nothing(monkeypatch, tmp_path, sessions):
    host = fakes.FakeHost()
    failed, result = run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path / 'd')}, host, check_mode=True)
    assert failed is False and result['changed'] is True
    assert result['would_dump'][0]['database'] == 'appdb' and result['would_prune'] == []
    assert not os.path.exists(str(tmp_path / 'd')) and sessions.made == []


def test_failure_has_pg_dumps_stderr_and_rc(monkeypatch, tmp_path, sessions):
    host = fakes.FakeHost()
    host.when(lambda argv: any(a.startswith('--file=') for a in argv) and os.path.basename(argv[0]) == 'pg_dump',
              lambda argv, env, data: (1, '', 'pg_dump: error: could not write to file: No space left on device\n'))
    failed, result = run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path)}, host)
    assert failed is True
    assert result['rc'] == 1 and 'No space left on device' in result['stderr']
    assert result['cmd'].startswith('/usr/bin/pg_dump --format=custom')
    assert 'free space' in result['hint'] and result['failed'][0]['database'] == 'appdb'
    assert os.listdir(str(tmp_path / 'appdb')) == []


def test_encryption_needs_a_passphrase(monkeypatch, tmp_path, sessions):
    failed, result = run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path), 'encrypt': True},
                                fakes.FakeHost())
    assert failed is True and 'passphrase' in result['msg']


def test_encrypted_dump_and_restore_through_the_modules(monkeypatch, tmp_path, sessions):
    host = fakes.FakeHost()
    failed, result = run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path), 'encrypt': True,
                                                           'passphrase': SECRET}, host)
    assert failed is False and result['dumps'][0]['encrypted'] is True
    assert not any(SECRET in c for c in result['commands'])
    failed, restored = run_module(monkeypatch, pg_dump_restore, {
        'source': str(tmp_path / 'appdb'), 'database': 'appdb_copy', 'passphrase': SECRET, 'no_owner': True}, host)
    assert failed is False and restored['matches'] is True and restored['database'] == 'appdb_copy'
    assert restored['source'] == result['dumps'][0]['path']


def test_restore_mismatch_fails_with_the_tables(monkeypatch, tmp_path, sessions):
    host = fakes.FakeHost()
    run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path)}, host)
    sessions.restored = [t for t in fakes.DEFAULT_TABLES if t['name'] != 'cache_junk']
    failed, result = run_module(monkeypatch, pg_dump_restore, {'source': str(tmp_path / 'appdb'),
                                                               'database': 'appdb_copy'}, host)
    assert failed is True and result['matches'] is False
    assert result['mismatches'][0]['name'] == 'cache_junk'


def test_restore_check_mode_verifies_checksums_only(monkeypatch, tmp_path, sessions):
    host = fakes.FakeHost()
    run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path)}, host)
    unit = layout.list_units(str(tmp_path / 'appdb'))[0]['path']
    failed, result = run_module(monkeypatch, pg_dump_restore, {'source': unit, 'database': 'x'}, host, check_mode=True)
    assert failed is False and result['target_exists'] is False and host.argvs('pg_restore')[-1][1] == '--list'
    with open(os.path.join(unit, 'globals.sql'), 'a') as handle:
        handle.write('-- tampered\n')
    failed, result = run_module(monkeypatch, pg_dump_restore, {'source': unit, 'database': 'x'}, host, check_mode=True)
    assert failed is True and 'globals.sql' in result['msg']


def test_missing_psycopg2_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(pg_dump_job, 'HAS_PSYCOPG2', False)
    failed, result = run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path)}, fakes.FakeHost())
    assert failed is True and 'psycopg2' in result['msg']


def test_prune_only(monkeypatch, tmp_path, sessions):
    host = fakes.FakeHost()
    for _run in range(3):
        run_module(monkeypatch, pg_dump_job, {'destination': str(tmp_path)}, host)
    assert len(layout.list_units(str(tmp_path / 'appdb'))) == 3
    args = {'destination': str(tmp_path), 'prune_only': True, 'retention_count': 1}
    failed, result = run_module(monkeypatch, pg_dump_job, args, host, check_mode=True)
    assert failed is False and len(result['would_prune']) == 2
    assert len(layout.list_units(str(tmp_path / 'appdb'))) == 3
    failed, result = run_module(monkeypatch, pg_dump_job, args, host)
    assert failed is False and result['changed'] is True and len(result['pruned']) == 2
    failed, result = run_module(monkeypatch, pg_dump_job, args, host)
    assert result['changed'] is False
