# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot session: its SQL on a fake DB-API connection, and the fork/pipe protocol for real."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_session
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError

CATALOG = [
    # oid, schema, name, relkind, owner, relispartition, relpersistence, populated
    (16515, 'Sales \u00dc', 'Mixed Case Table', 'r', 'postgres', False, 'p', True),
    (16529, 'public', 'measurements', 'p', 'postgres', False, 'p', True),
    (16532, 'public', 'measurements_2025', 'r', 'postgres', True, 'p', True),
    (16538, 'public', 'mv', 'm', 'postgres', False, 'p', True),
    (16539, 'public', 'mv_empty', 'm', 'postgres', False, 'p', False),
    (16540, 'public', 'with "quote"', 'r', 'app', False, 'u', True),
]
ROWS = {'"Sales \u00dc"."Mixed Case Table"': 100, '"public"."measurements_2025"': 600, '"public"."mv"': 1,
        '"public"."with ""quote"""': 3}


class FakeCursor(object):
    def __init__(self, conn):
        self.conn = conn
        self.result = []

    def execute(self, sql):
        self.conn.executed.append(sql)
        if self.conn.fail_on and self.conn.fail_on in sql:
            raise RuntimeError('permission denied for table x')
        if sql == 'SELECT pg_catalog.pg_export_snapshot()':
            self.result = [('00000003-0000001B-1',)]
        elif sql.startswith('SELECT d.datname'):
            self.result = [('appdb', 'UTF8', 'C.UTF-8', 'C.UTF-8', self.conn.version, '17.12 (Debian)', 4242)]
        elif sql == "SELECT current_setting('server_version_num')":
            self.result = [(str(self.conn.version),)]
        elif sql == dump_session.SYSTEM_ID_SQL:
            self.result = [('7440000000000000001',)]
        elif sql.startswith('SELECT datlocprovider'):
            self.result = [('i', 'und-x-icu')]
        elif sql == dump_session.TABLES_SQL:
            self.result = list(CATALOG)
        elif sql.startswith('SELECT count(*) FROM ONLY '):
            self.result = [(ROWS[sql[len('SELECT count(*) FROM ONLY '):]],)]
        elif sql == dump_session.LARGE_OBJECTS_SQL:
            self.result = [(2,)]
        elif sql.startswith('BEGIN') or sql == 'ROLLBACK':
            self.result = []
        else:
            raise AssertionError('unexpected SQL %s' % sql)

    def fetchone(self):
        return self.result[0]

    def fetchall(self):
        return self.result

    def close(self):
        pass


class FakeConn(object):
    def __init__(self, version=170012, fail_on=None):
        self.version = version
        self.fail_on = fail_on
        self.executed = []
        self.autocommit = False
        self.closed = False

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


def test_begin_opens_repeatable_read_and_exports_the_snapshot():
    conn = FakeConn()
    work = dump_session.SnapshotWork(conn)
    info = work.begin()
    assert conn.autocommit is True
    assert conn.executed[:2] == ['BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY',
                                 'SELECT pg_catalog.pg_export_snapshot()']
    assert info['snapshot'] == '00000003-0000001B-1' and info['server_version_num'] == 170012
    assert info['database'] == {'name': 'appdb', 'encoding': 'UTF8', 'collate': 'C.UTF-8', 'ctype': 'C.UTF-8',
                                'locale_provider': 'icu', 'locale': 'und-x-icu',
                                'system_identifier': '7440000000000000001'}
    assert 'datlocale' in conn.executed[-2] and conn.executed[-1] == dump_session.SYSTEM_ID_SQL


def test_pg15_reads_the_icu_locale_from_its_own_column_and_older_have_none():
    conn = FakeConn(version=150020)
    dump_session.SnapshotWork(conn).begin()
    assert 'daticulocale' in conn.executed[-2]
    conn = FakeConn(version=140010)
    info = dump_session.SnapshotWork(conn).begin(export_snapshot=False)
    assert info['snapshot'] is None and info['database']['locale_provider'] == 'libc'
    assert 'SELECT pg_catalog.pg_export_snapshot()' not in conn.executed


def test_every_table_is_counted_exactly_with_quoted_names():
    conn = FakeConn()
    work = dump_session.SnapshotWork(conn)
    work.begin()
    counts = work.count()
    by_name = dict((t['name'], t) for t in counts['tables'])
    assert by_name['Mixed Case Table']['rows'] == 100 and by_name['Mixed Case Table']['schema'] == 'Sales \u00dc'
    assert by_name['with "quote"']['rows'] == 3 and by_name['with "quote"']['unlogged'] is True
    assert by_name['measurements']['rows'] is None and by_name['measurements']['kind'] == 'partitioned table'
    assert by_name['measurements_2025']['partition'] is True
    assert by_name['mv']['rows'] == 1 and by_name['mv_empty']['rows'] is None
    assert counts['large_objects'] == 2
    counted = [s for s in conn.executed if s.startswith('SELECT count(*) FROM ONLY')]
    assert counted == ['SELECT count(*) FROM ONLY "Sales \u00dc"."Mixed Case Table"',
                       'SELECT count(*) FROM ONLY "public"."measurements_2025"',
                       'SELECT count(*) FROM ONLY "public"."mv"',
                       'SELECT count(*) FROM ONLY "public"."with ""quote"""']
    # every count ran after the BEGIN, i.e. inside the exported snapshot
    assert conn.executed.index('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY') < conn.executed.index(counted[0])
    assert 'ROLLBACK' not in conn.executed


def test_catalog_query_skips_system_schemas():
    sql = dump_session.TABLES_SQL
    assert "relkind IN ('r', 'p', 'm')" in sql
    assert "NOT IN ('pg_catalog', 'information_schema')" in sql and 'pg\\_toast' in sql and 'pg\\_temp\\_' in sql


def test_end_rolls_back_and_closes():
    conn = FakeConn()
    work = dump_session.SnapshotWork(conn)
    work.begin()
    work.end()
    assert conn.executed[-1] == 'ROLLBACK' and conn.closed


# --- the real fork and pipes, with a fake psycopg2.connect ------------------------------------------

def test_forked_session_sends_snapshot_then_counts_and_ends_when_released():
    seen = {}

    def connect(**kwargs):
        seen.update(kwargs)
        return FakeConn()
    session = dump_session.ForkedSession({'dbname': 'appdb', 'port': 5433, 'host': None}, connect=connect,
                                         env={'PGPASSFILE': '/nonexistent'})
    info = session.open()
    pid = session.pid
    assert info['snapshot'] == '00000003-0000001B-1'
    os.kill(pid, 0)  # the child holds the transaction while the parent dumps
    counts = session.counts()
    assert len(counts['tables']) == len(CATALOG)
    os.kill(pid, 0)  # still open after counting: released only by close()
    session.close()
    with pytest.raises(OSError):
        os.kill(pid, 0)
    assert session.pid is None
    assert seen == {}  # connect ran in the child: the parent's state is untouched


def test_forked_session_errors_reach_the_parent():
    session = dump_session.ForkedSession({'dbname': 'appdb'}, connect=lambda **kw: FakeConn(fail_on='FROM ONLY'))
    session.open()
    with pytest.raises(EngineError) as err:
        session.counts()
    assert 'permission denied for table x' in err.value.msg
    assert session.pid is None


def test_forked_session_connection_failure():
    def connect(**kwargs):
        raise RuntimeError('FATAL:  Peer authentication failed for user "postgres"')
    session = dump_session.ForkedSession({'dbname': 'appdb'}, connect=connect)
    with pytest.raises(EngineError) as err:
        session.open()
    assert 'Peer authentication failed' in err.value.msg and session.pid is None


def test_abort_kills_a_child_that_is_still_counting():
    import time

    class SlowConn(FakeConn):
        def cursor(self):
            cursor = FakeCursor(self)
            real = cursor.execute

            def execute(sql):
                if sql.startswith('SELECT count(*)'):
                    time.sleep(30)
                return real(sql)
            cursor.execute = execute
            return cursor
    session = dump_session.ForkedSession({'dbname': 'appdb'}, connect=lambda **kw: SlowConn())
    session.open()
    started = time.time()
    session.abort()
    assert time.time() - started < 5 and session.pid is None
    session.abort()  # idempotent
    session.close()


def test_connect_kwargs_drop_empty_values_and_name_the_application():
    session = dump_session.ForkedSession({'dbname': 'x', 'host': None, 'port': None, 'user': ''})
    assert session.connect_kwargs == {'dbname': 'x', 'application_name': dump_session.APPLICATION_NAME}
