# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database session behind a provable pg_dump: one snapshot for the row counts and the dump.

`SnapshotWork` is the SQL: `BEGIN ISOLATION LEVEL REPEATABLE READ`, `pg_export_snapshot()`, then an
exact `count(*)` of every table inside that snapshot. pg_dump is started with `--snapshot=<id>` while
this transaction stays open, so the counts in the manifest are exactly the rows the dump holds.

`ForkedSession` runs `SnapshotWork` with psycopg2 in a forked child process. Why a child:
- the Ansible module runs as root, but the cluster admits the cluster owner (postgres) over the local
  socket by peer authentication, which looks at the process's effective uid. The child drops to the
  `os_user` (initgroups + setresgid + setresuid) before it connects; the module process keeps root.
  No password is needed and none is ever placed in argv.
- the transaction must stay open while pg_dump runs, and the counting can run on the server while
  pg_dump reads and compresses: the child sends the snapshot id as soon as it has it, counts, sends
  the counts, then waits for the parent to release it. If the parent dies, the pipe closes and the
  child ends its transaction and exits by itself.
The protocol is one JSON object per line on a pipe. Tests drive `SnapshotWork` with a fake DB-API
connection and `ForkedSession` with a fake `connect`.
"""

import json
import os
import pwd
import signal
import time

from .process import EngineError

try:
    import psycopg2
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    psycopg2 = None
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = _exc

APPLICATION_NAME = 'pgops-backup dump'

# Relations whose rows are counted: ordinary tables (leaf partitions included) and materialized
# views; partitioned tables are listed (their rows are in their partitions). System schemas,
# TOAST and other sessions' temporary schemas are left out: pg_dump does not dump them either.
TABLES_SQL = (
    "SELECT c.oid, n.nspname, c.relname, c.relkind, pg_catalog.pg_get_userbyid(c.relowner), "
    "c.relispartition, c.relpersistence, "
    "CASE WHEN c.relkind = 'm' THEN c.relispopulated ELSE true END "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'm') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
    "ORDER BY n.nspname, c.relname")
LARGE_OBJECTS_SQL = 'SELECT count(*) FROM pg_catalog.pg_largeobject_metadata'
DATABASE_SQL = (
    "SELECT d.datname, pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, "
    "current_setting('server_version_num')::int, current_setting('server_version'), pg_backend_pid() "
    "FROM pg_catalog.pg_database d WHERE d.datname = current_database()")
# NULL (not an error, which would abort the transaction) when the dump user may not read pg_control.
SYSTEM_ID_SQL = ("SELECT CASE WHEN pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') "
                 "THEN (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) END")
KIND_NAMES = {'r': 'table', 'p': 'partitioned table', 'm': 'materialized view'}


def quote_ident(name):
    """SQL identifier quoting: always quoted, embedded double quotes doubled (mixed case, spaces,
    unicode and quotes all survive)."""
    return '"%s"' % name.replace('"', '""')


def qualified(schema, name):
    return '%s.%s' % (quote_ident(schema), quote_ident(name))


def count_sql(schema, name):
    # ONLY: a partition's parent is not counted twice; each leaf partition is its own entry.
    return 'SELECT count(*) FROM ONLY %s' % qualified(schema, name)


class SnapshotWork(object):
    """The SQL of the session, on any DB-API connection (psycopg2 in production, a fake in tests)."""

    def __init__(self, conn, clock=time.time):
        self.conn = conn
        self.clock = clock

    def _one(self, sql):
        cur = self.conn.cursor()
        cur.execute(sql)
        row = cur.fetchone()
        cur.close()
        return row

    def _all(self, sql):
        cur = self.conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
        cur.close()
        return rows

    def begin(self, export_snapshot=True):
        """Open the transaction; returns the session facts (with the snapshot id when exported)."""
        self.conn.autocommit = True  # the BEGIN below is ours, psycopg2 must not add its own
        cur = self.conn.cursor()
        cur.execute('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
        cur.close()
        snapshot = self._one('SELECT pg_catalog.pg_export_snapshot()')[0] if export_snapshot else None
        row = self._one(DATABASE_SQL)
        locale = self._locale()
        database = {'name': row[0], 'encoding': row[1], 'collate': row[2], 'ctype': row[3]}
        database.update(locale)
        # Which cluster the dump comes from: a restore with drop_existing refuses this database there.
        database['system_identifier'] = self._one(SYSTEM_ID_SQL)[0]
        return {'snapshot': snapshot, 'server_version_num': int(row[4]), 'server_version': row[5],
                'backend_pid': int(row[6]), 'database': database}

    def _locale(self):
        """Locale provider of the database (PostgreSQL 15+), so a restore can recreate it."""
        version = int(self._one("SELECT current_setting('server_version_num')")[0])
        if version < 150000:
            return {'locale_provider': 'libc', 'locale': None}
        column = 'datlocale' if version >= 170000 else 'daticulocale'
        row = self._one('SELECT datlocprovider, %s FROM pg_catalog.pg_database '
                        'WHERE datname = current_database()' % column)
        provider = {'c': 'libc', 'i': 'icu', 'b': 'builtin'}.get(row[0], row[0])
        return {'locale_provider': provider, 'locale': row[1]}

    def count(self):
        """Exact rows of every table as this transaction sees them."""
        started = self.clock()
        tables = []
        for oid, schema, name, kind, owner, is_partition, persistence, populated in self._all(TABLES_SQL):
            entry = {'oid': int(oid), 'schema': schema, 'name': name, 'kind': KIND_NAMES.get(kind, kind),
                     'owner': owner, 'partition': bool(is_partition), 'unlogged': persistence == 'u',
                     'rows': None}
            if kind == 'r' or (kind == 'm' and populated):
                entry['rows'] = int(self._one(count_sql(schema, name))[0])
            tables.append(entry)
        large_objects = int(self._one(LARGE_OBJECTS_SQL)[0])
        return {'tables': tables, 'large_objects': large_objects,
                'count_seconds': round(self.clock() - started, 3)}

    def end(self):
        cur = self.conn.cursor()
        cur.execute('ROLLBACK')  # read only: nothing to commit
        cur.close()
        self.conn.close()


def _drop_privileges(os_user):
    """Become os_user for good (the child only). A no-op when already running as that user."""
    entry = pwd.getpwnam(os_user)
    os.environ['HOME'] = entry.pw_dir
    os.environ['USER'] = os.environ['LOGNAME'] = os_user
    if os.geteuid() == entry.pw_uid:
        return
    if os.geteuid() != 0:
        raise EngineError('cannot switch to user %r: not running as root' % os_user)
    os.initgroups(os_user, entry.pw_gid)
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)


def psycopg2_connect(**kwargs):
    if not HAS_PSYCOPG2:
        raise EngineError('psycopg2 is not installed on this host', hint='install python3-psycopg2')
    return psycopg2.connect(**kwargs)


def _error_message(exc):
    text = str(exc).strip() or exc.__class__.__name__
    code = getattr(exc, 'pgcode', None)
    return '%s%s' % (text, ' (SQLSTATE %s)' % code if code else '')


class ForkedSession(object):
    """Holds the snapshot transaction in a child process; see the module docstring.

    connect_kwargs: libpq keywords (dbname, host, port, user); env: extra environment for libpq
    (PGPASSFILE); os_user: the user the child becomes before connecting (when run as root).
    """

    def __init__(self, connect_kwargs, os_user=None, env=None, export_snapshot=True, connect=None):
        self.connect_kwargs = dict((k, v) for k, v in connect_kwargs.items() if v not in (None, ''))
        self.connect_kwargs.setdefault('application_name', APPLICATION_NAME)
        self.os_user = os_user
        self.env = dict(env or {})
        self.export_snapshot = export_snapshot
        self._connect = connect or psycopg2_connect
        self.pid = None
        self._from_child = None
        self._to_child = None
        self.info = None
        self._counts = None

    # child side -----------------------------------------------------------------------------
    def _child(self, write_fd, read_fd):
        out = os.fdopen(write_fd, 'w')
        status = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if self.os_user:
                _drop_privileges(self.os_user)
            os.environ.update(self.env)
            work = SnapshotWork(self._connect(**self.connect_kwargs))
            out.write(json.dumps(work.begin(self.export_snapshot)) + '\n')
            out.flush()
            out.write(json.dumps(work.count()) + '\n')
            out.flush()
            out.close()
            os.read(read_fd, 1)  # the parent writes a byte or closes the pipe: the dump is over
            work.end()
        except BaseException as exc:  # every failure goes to the parent, which raises it
            status = 1
            try:
                out.write(json.dumps({'error': _error_message(exc)}) + '\n')
                out.flush()
            except Exception:
                pass
        finally:
            os._exit(status)  # never run the parent's atexit handlers (Ansible's temp dir cleanup)

    # parent side ----------------------------------------------------------------------------
    def _receive(self, what):
        line = self._from_child.readline()
        if not line:
            self.abort()
            raise EngineError('the snapshot session ended without sending %s' % what,
                              hint='read the PostgreSQL log for the session of application %r' % APPLICATION_NAME)
        message = json.loads(line)
        if 'error' in message:
            self.abort()
            raise EngineError('database session failed: %s' % message['error'],
                              hint='check that %s can connect to database %r over %s' % (
                                  self.os_user or 'this user', self.connect_kwargs.get('dbname'),
                                  self.connect_kwargs.get('host') or 'the local socket'))
        return message

    def open(self):
        """Start the child; returns the session facts, including the exported snapshot id."""
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends in os._exit, coverage cannot see it
            os.close(parent_read)
            os.close(parent_write)
            self._child(child_write, child_read)
        os.close(child_read)
        os.close(child_write)
        self.pid = pid
        self._from_child = os.fdopen(parent_read, 'r')
        self._to_child = parent_write
        self.info = self._receive('its snapshot')
        return self.info

    def counts(self):
        """The row counts (waits until the child has finished counting)."""
        if self._counts is None:
            self._counts = self._receive('the row counts')
        return self._counts

    def close(self):
        """Release the child: it ends the transaction and exits."""
        if self.pid is None:
            return
        try:
            os.write(self._to_child, b'x')
        except OSError:
            pass
        self._reap()

    def abort(self):
        """Stop the child at once (a failed dump must not wait for counting to finish)."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        self._reap()

    def _reap(self):
        for fd_owner in (self._to_child,):
            try:
                os.close(fd_owner)
            except (OSError, TypeError):
                pass
        if self._from_child is not None:
            self._from_child.close()
        pid, self.pid = self.pid, None
        self._from_child = self._to_child = None
        os.waitpid(pid, 0)


def session_factory(conn, os_user=None, connect=None):
    """A factory of ForkedSessions for one connection setting (see pg_dump.Connection)."""
    def make(dbname, export_snapshot=True):
        kwargs = conn.libpq_kwargs(dbname)
        return ForkedSession(kwargs, os_user=os_user, env=conn.env(), export_snapshot=export_snapshot,
                             connect=connect)
    return make
