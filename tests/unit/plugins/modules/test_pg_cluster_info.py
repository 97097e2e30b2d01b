# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.pg_cluster_info through main()."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.module_utils.postgres import FIELD_SEP, RECORD_SEP
from ansible_collections.pgops.backup.plugins.modules import pg_cluster_info
from ansible_collections.pgops.backup.tests.unit.fakes import FakeProcess, run_module

MAIN_17 = "17  main    5432 %s postgres /var/lib/postgresql/17/main /var/log/postgresql/postgresql-17-main.log\n"
MAIN_15 = "15  main    5433 down   postgres /var/lib/postgresql/15/main /var/log/postgresql/postgresql-15-main.log\n"
SETTINGS_SQL = "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'wal_level')"


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


def server(status='online', recovery='f'):
    fake = FakeProcess().on('--no-header', out=MAIN_17 % status)
    fake.on('SELECT pg_is_in_recovery()', out=recovery + '\n')
    fake.on('SHOW server_version_num', out='170006\n')
    fake.on('SELECT name FROM pg_settings WHERE pending_restart ORDER BY name', out='shared_buffers\n')
    fake.on('SELECT extract(epoch FROM pg_postmaster_start_time())::text', out='1795252200.123456\n')
    fake.on(SETTINGS_SQL, out='archive_mode%son%swal_level%sreplica\n' % (FIELD_SEP, RECORD_SEP, FIELD_SEP))
    return fake


def test_running_primary(monkeypatch):
    fake = server()
    failed, result = run_module(monkeypatch, pg_cluster_info, {'settings': ['archive_mode', 'wal_level']}, fake)
    assert failed is False and result['changed'] is False
    assert result['cluster'] == {
        'version': '17', 'name': 'main', 'port': 5432, 'status': 'online', 'owner': 'postgres',
        'data_directory': '/var/lib/postgresql/17/main', 'log': '/var/log/postgresql/postgresql-17-main.log',
        'config_directory': '/etc/postgresql/17/main', 'service': 'postgresql@17-main.service',
        'running': True, 'in_recovery': False, 'server_version_num': 170006,
        'pending_restart': ['shared_buffers'], 'postmaster_start_time': '1795252200.123456',
        'settings': {'archive_mode': 'on', 'wal_level': 'replica'}}
    assert len(result['clusters']) == 1
    assert result['commands'][0] == '/usr/bin/pg_lsclusters --no-header'


def test_standby(monkeypatch):
    failed, result = run_module(monkeypatch, pg_cluster_info, {}, server('online,recovery', 't'))
    assert failed is False
    assert result['cluster']['in_recovery'] is True and result['cluster']['settings'] == {}


def test_down_cluster_is_not_queried(monkeypatch):
    fake = FakeProcess().on('--no-header', out=MAIN_17 % 'online' + MAIN_15)
    failed, result = run_module(monkeypatch, pg_cluster_info, {'version': '15'}, fake, check_mode=True)
    assert failed is False
    assert result['cluster']['running'] is False and result['cluster']['port'] == 5433
    assert 'in_recovery' not in result['cluster']
    assert len(fake.calls) == 1


def test_ambiguous_cluster(monkeypatch):
    fake = FakeProcess().on('--no-header', out=MAIN_17 % 'online' + MAIN_15)
    failed, result = run_module(monkeypatch, pg_cluster_info, {}, fake)
    assert failed is True
    assert result['msg'] == ('expected exactly one PostgreSQL cluster */main on this host, found: 17/main, 15/main; '
                             'next step: set the PostgreSQL version and cluster name explicitly')
    assert result['commands'] == ['/usr/bin/pg_lsclusters --no-header']


def test_psql_runs_as_the_owner_and_its_failure_is_reported(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    err = 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  role "root" does not exist\n'
    fake = FakeProcess().on('--no-header', out=MAIN_17 % 'online').on('SELECT pg_is_in_recovery()', rc=2, err=err)
    failed, result = run_module(monkeypatch, pg_cluster_info, {}, fake)
    assert failed is True
    assert fake.argvs[1][:5] == ['/usr/bin/runuser', '-u', 'postgres', '--', '/usr/bin/psql']
    assert result['msg'].startswith('psql failed; command: /usr/bin/psql -X -A -t -q')
    assert result['rc'] == 2 and result['stderr'] == err
    assert result['cmd'].endswith('-c SELECT pg_is_in_recovery()')
