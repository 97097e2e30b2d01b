# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clusters from pg_lsclusters, psql rows and the psql command line."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.postgres import (
    FIELD_SEP, RECORD_SEP, Psql, find_cluster, list_clusters, parse_lsclusters, parse_rows)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.fakes import FakeProcess

# `pg_lsclusters --no-header` as postgresql-common prints it when not on a terminal.
LSCLUSTERS = (
    "15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/postgresql/postgresql-15-main.log\n"
    "17  main    5433 online,recovery postgres /var/lib/postgresql/17/main /var/log/postgresql/postgresql-17-main.log\n"
    "17  reports 5434 down   postgres /srv/pg/17/reports\n"
)


def test_parse_lsclusters():
    clusters = parse_lsclusters(LSCLUSTERS)
    assert clusters[0] == {'version': '15', 'name': 'main', 'port': 5432, 'status': 'online', 'owner': 'postgres',
                           'data_directory': '/var/lib/postgresql/15/main',
                           'log': '/var/log/postgresql/postgresql-15-main.log'}
    assert (clusters[1]['version'], clusters[1]['port'], clusters[1]['status']) == ('17', 5433, 'online,recovery')
    assert clusters[2]['name'] == 'reports' and clusters[2]['status'] == 'down' and clusters[2]['log'] is None


@pytest.mark.parametrize('text', ['', None, '\n', 'Ver Cluster Port\n'])
def test_parse_lsclusters_without_clusters(text):
    assert parse_lsclusters(text) == []


def test_find_cluster_by_version_and_name():
    clusters = parse_lsclusters(LSCLUSTERS)
    assert find_cluster(clusters, '17')['port'] == 5433
    assert find_cluster(clusters, 17)['port'] == 5433
    assert find_cluster(clusters, name='reports')['port'] == 5434


def test_find_cluster_ambiguous():
    with pytest.raises(EngineError) as caught:
        find_cluster(parse_lsclusters(LSCLUSTERS))
    assert caught.value.msg == ('expected exactly one PostgreSQL cluster */main on this host, '
                                'found: 15/main, 17/main, 17/reports')
    assert caught.value.hint == 'set the PostgreSQL version and cluster name explicitly'


def test_find_cluster_none():
    with pytest.raises(EngineError) as caught:
        find_cluster([], '16')
    assert caught.value.msg.endswith('cluster 16/main on this host, found: none')


@pytest.mark.parametrize('text, rows', [
    ('', []),
    (None, []),
    ('\n', []),
    ('f\n', [['f']]),
    ('a%sb%sc%sd\n' % (FIELD_SEP, RECORD_SEP, FIELD_SEP), [['a', 'b'], ['c', 'd']]),
    ('archive_command%spgbackrest --stanza=main archive-push "%%p"\n' % FIELD_SEP,
     [['archive_command', 'pgbackrest --stanza=main archive-push "%p"']]),
    ('two\nlines%sx%sy%s\n' % (FIELD_SEP, RECORD_SEP, FIELD_SEP), [['two\nlines', 'x'], ['y', '']]),
])
def test_parse_rows(text, rows):
    assert parse_rows(text) == rows


def psql_runner(fake):
    return Runner(run=fake, which=fake.which, run_as=None)


def test_psql_command_line():
    psql = Psql(psql_runner(FakeProcess()), port=5433)
    assert psql.argv('SELECT 1') == ['/usr/bin/psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
                                     '-F', FIELD_SEP, '-R', RECORD_SEP, '-p', '5433', '-d', "dbname='postgres'",
                                     '-c', 'SELECT 1']
    remote = Psql(psql_runner(FakeProcess()), host='/var/run/postgresql').argv('SELECT 1', dbname='app')
    assert remote[:3] == ['/usr/bin/psql', '-h', '/var/run/postgresql']
    assert remote[remote.index('-d') + 1] == "dbname='app'"


@pytest.mark.parametrize('out, expected', [('t\n', True), ('f\n', False)])
def test_is_in_recovery(out, expected):
    fake = FakeProcess().on('SELECT pg_is_in_recovery()', out=out)
    assert Psql(psql_runner(fake)).is_in_recovery() is expected


def test_server_values():
    fake = FakeProcess()
    fake.on('SHOW server_version_num', out='170006\n')
    fake.on('SELECT name FROM pg_settings WHERE pending_restart ORDER BY name',
            out='shared_buffers%swal_level\n' % RECORD_SEP)
    psql = Psql(psql_runner(fake))
    assert psql.server_version_num() == 170006
    assert psql.pending_restart() == ['shared_buffers', 'wal_level']


def test_settings_are_quoted():
    sql = "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'o''brien')"
    fake = FakeProcess().on(sql, out='archive_mode%son\n' % FIELD_SEP)
    assert Psql(psql_runner(fake)).settings(['archive_mode', "o'brien"]) == {'archive_mode': 'on'}


def test_psql_failure():
    err = ('psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
           'No such file or directory\n')
    fake = FakeProcess().on('SELECT pg_is_in_recovery()', rc=2, err=err)
    with pytest.raises(EngineError) as caught:
        Psql(psql_runner(fake)).is_in_recovery()
    assert caught.value.msg == 'psql failed' and caught.value.rc == 2
    assert 'No such file or directory' in caught.value.full_message()


def test_list_clusters():
    fake = FakeProcess().on('--no-header', out=LSCLUSTERS)
    assert len(list_clusters(psql_runner(fake))) == 3
    assert fake.argvs == [['/usr/bin/pg_lsclusters', '--no-header']]


def test_list_clusters_without_postgresql_common():
    with pytest.raises(EngineError) as caught:
        list_clusters(psql_runner(FakeProcess(missing=['pg_lsclusters'])))
    assert caught.value.hint == 'install the postgresql-common package'


@pytest.mark.parametrize('name, conninfo', [
    ('app', "dbname='app'"),
    ('host=evil', "dbname='host=evil'"),
    ('-h evil', "dbname='-h evil'"),
    ("o'hara", "dbname='o\\'hara'"),
    ('back\\slash', "dbname='back\\\\slash'"),
    ('postgresql://evil/x', "dbname='postgresql://evil/x'"),
])
def test_database_names_reach_psql_as_conninfo(name, conninfo):
    from ansible_collections.pgops.backup.plugins.module_utils.postgres import conninfo_dbname
    assert conninfo_dbname(name) == conninfo
    argv = Psql(psql_runner(FakeProcess())).argv('SELECT 1', dbname=name)
    assert argv[argv.index('-d') + 1] == conninfo and name not in argv


@pytest.mark.parametrize('name', ['', None, 'a\x00b'])
def test_impossible_database_names_are_refused(name):
    from ansible_collections.pgops.backup.plugins.module_utils.postgres import conninfo_dbname
    with pytest.raises(EngineError) as err:
        conninfo_dbname(name)
    assert err.value.code == 'dbname' and 'invalid database name' in err.value.msg


@pytest.mark.parametrize('euid, requested, expected', [
    (0, None, 'postgres'), (0, 'postgres', 'postgres'), (0, 'backup', 'backup'),
    (1000, None, None), (1000, 'postgres', 'postgres')])
def test_run_as_rule(euid, requested, expected):
    from ansible_collections.pgops.backup.plugins.module_utils.postgres import tool_user
    assert tool_user(requested, euid=euid) == expected


@pytest.mark.parametrize('euid', [0, 1000])
def test_run_as_root_is_refused(euid):
    from ansible_collections.pgops.backup.plugins.module_utils.postgres import tool_user
    with pytest.raises(EngineError) as err:
        tool_user('root', euid=euid)
    assert err.value.code == 'run-as-root' and "'root'" in err.value.msg and '--run-as postgres' in err.value.hint
