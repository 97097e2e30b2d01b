# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes for the pg_dump engine tests: only the process boundary and the database session are faked.

FakeHost is the `run` callable handed to process.Runner: it answers pg_dump, pg_dumpall,
pg_restore, psql and gpg argv lists the way the real programs would (writing the files they would
write), and records every call. FakeSession stands in for dump_session.ForkedSession.
"""

from __future__ import annotations

import os
import shutil

from ansible_collections.pgops.backup.plugins.module_utils.postgres import RECORD_SEP
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner

GLOBALS_SQL = ('--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE app;\n\n'
               '--\n-- PostgreSQL database cluster dump complete\n--\n\n')


def option(argv, name):
    prefix = '--%s=' % name
    for arg in argv:
        if arg.startswith(prefix):
            return arg[len(prefix):]
    return None


def dbname_of(argv):
    value = option(argv, 'dbname')
    if value is None and '-d' in argv:
        value = argv[argv.index('-d') + 1]
    # dbname='name' with \' and \\ escapes
    inner = value[len("dbname='"):-1]
    return inner.replace("\\'", "'").replace('\\\\', '\\')


def toc_for(tables, with_data=True, exclude=(), large_objects=False):
    """A `pg_restore --list` text for counted tables (oid-based like the real one)."""
    lines = [';', '; Archive created at 2026-11-21 09:14:07 UTC', ';     dbname: x', ';']
    n = 100
    for t in tables:
        n += 1
        desc = 'TABLE' if t['kind'] != 'materialized view' else 'MATERIALIZED VIEW'
        lines.append('%d; 1259 %d %s %s %s %s' % (n, t['oid'], desc, t['schema'], t['name'], t['owner']))
    for t in tables:
        n += 1
        if t['kind'] == 'table' and with_data and t['name'] not in exclude:
            lines.append('%d; 0 %d TABLE DATA %s %s %s' % (n, t['oid'], t['schema'], t['name'], t['owner']))
    if large_objects:
        lines.append('%d; 2613 16545 BLOB METADATA - 16545 postgres' % (n + 1))
        lines.append('%d; 0 0 BLOBS - 16545 postgres' % (n + 2))
    return '\n'.join(lines) + '\n'


def table(oid, name, rows, schema='public', kind='table', owner='postgres', partition=False):
    return {'oid': oid, 'schema': schema, 'name': name, 'kind': kind, 'owner': owner,
            'partition': partition, 'unlogged': False, 'rows': rows}


DEFAULT_TABLES = [
    table(16515, 'Mixed Case Table', 100, schema='Sales \u00dc'),
    table(16529, 'measurements', None, kind='partitioned table'),
    table(16532, 'measurements_2025', 600, partition=True),
    table(16535, 'measurements_2026', 400, partition=True),
    table(16523, 'cache_junk', 5),
    table(16540, 'with "quote"', 3),
]


class FakeHost(object):
    """The `run` callable for process.Runner. Behaviour is tuned through attributes."""

    def __init__(self, pg_dump_version='17.12', server_version_num=170012, databases=('appdb',),
                 tables=None, large_objects=0, exclude=()):
        self.pg_dump_version = pg_dump_version
        self.server_version_num = server_version_num
        self.databases = list(databases)
        self.tables = list(tables if tables is not None else DEFAULT_TABLES)
        self.large_objects = large_objects
        self.exclude = exclude
        self.calls = []
        self.overrides = []  # (predicate(argv), handler(argv, env, data) -> (rc, out, err))
        self.existing = set()
        self.sql = []
        # the target cluster as a restore sees it (dump_restore's guards and cluster lock)
        self.clusters = '17  main    5432 online postgres /var/lib/postgresql/17/main /var/log/postgresql/x.log\n'
        self.roles = ['postgres']
        self.system_identifier = '7440000000000000001'
        self.sessions = {}  # database -> [(pid, user, application, client)]

    def when(self, predicate, handler):
        self.overrides.append((predicate, handler))

    def which(self, name):
        return '/usr/bin/%s' % name

    def runner(self, run_as=None):
        return Runner(run=self, which=lambda name: '/usr/bin/%s' % name, run_as=run_as)

    def __call__(self, argv, env=None, data=None, stream=None):
        self.calls.append({'argv': list(argv), 'env': dict(env or {}), 'data': data})
        for predicate, handler in reversed(self.overrides):
            if predicate(argv):
                return handler(argv, env, data)
        program = os.path.basename(argv[0])
        handler = getattr(self, 'do_' + program.replace('-', '_'), None)
        if handler is None:
            raise AssertionError('unexpected command: %r' % (argv,))
        return handler(argv, env, data)

    def argvs(self, program):
        return [c['argv'] for c in self.calls if os.path.basename(c['argv'][0]) == program]

    # programs -------------------------------------------------------------------------------
    def do_pg_dump(self, argv, env, data):
        if '--version' in argv:
            return 0, 'pg_dump (PostgreSQL) %s (Debian %s-1)\n' % (self.pg_dump_version, self.pg_dump_version), ''
        if '--help' in argv:
            return 0, HELP_TEXT, ''
        path, fmt = option(argv, 'file'), option(argv, 'format')
        if fmt == 'directory':
            os.mkdir(path, 0o700)
            for name in ('toc.dat', '3001.dat.zst', '3002.dat.zst'):
                with open(os.path.join(path, name), 'wb') as handle:
                    handle.write(b'dir-part ' + name.encode())
        elif fmt == 'plain':
            with open(path, 'w') as handle:
                for t in self.tables:
                    handle.write('--\n-- Name: %s; Type: TABLE; Schema: %s; Owner: %s\n--\n' % (
                        t['name'], t['schema'], t['owner']))
                for t in self.tables:
                    if t['kind'] == 'table' and t['name'] not in self.exclude:
                        handle.write('--\n-- Data for Name: %s; Type: TABLE DATA; Schema: %s; Owner: %s\n--\n' % (
                            t['name'], t['schema'], t['owner']))
                handle.write('--\n-- PostgreSQL database dump complete\n--\n')
        else:
            with open(path, 'wb') as handle:
                handle.write(b'PGDMP fake custom archive of ' + dbname_of(argv).encode('utf-8'))
        # like a tool that ignores the umask: the engine must make the files private itself
        os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
        return 0, '', ''

    def do_pg_dumpall(self, argv, env, data):
        if '--version' in argv:
            return 0, 'pg_dumpall (PostgreSQL) %s\n' % self.pg_dump_version, ''
        with open(option(argv, 'file'), 'w') as handle:
            handle.write(GLOBALS_SQL)
        return 0, '', ''

    def do_pg_restore(self, argv, env, data):
        if '--version' in argv:
            return 0, 'pg_restore (PostgreSQL) %s\n' % self.pg_dump_version, ''
        if '--list' in argv:
            assert os.path.exists(argv[-1]), 'pg_restore --list of a missing file'
            return 0, toc_for(self.tables, exclude=self.exclude, large_objects=self.large_objects > 0), ''
        assert os.path.exists(argv[-1]), 'pg_restore of a missing file'
        self.existing.add(dbname_of(argv))
        return 0, '', ''

    def do_pg_lsclusters(self, argv, env, data):
        return 0, self.clusters, ''

    def do_psql(self, argv, env, data):
        if '-f' in argv:
            assert os.path.exists(argv[argv.index('-f') + 1])
            return 0, '', ''
        sql = argv[argv.index('-c') + 1]
        self.sql.append(sql)
        if sql.startswith('SELECT rolname FROM pg_catalog.pg_roles'):
            return 0, ''.join(r + RECORD_SEP for r in self.roles), ''
        if 'pg_control_system()' in sql:
            return 0, self.system_identifier + RECORD_SEP, ''
        if 'FROM pg_catalog.pg_stat_activity' in sql:
            name = sql.split("datname = E'", 1)[1].split("'", 1)[0]
            rows = self.sessions.get(name, [])
            if sql.startswith('SELECT pg_catalog.pg_terminate_backend'):
                self.sessions.pop(name, None)
                return 0, ('t' + RECORD_SEP) * len(rows), ''
            return 0, ''.join('\x1f'.join(str(f) for f in r) + RECORD_SEP for r in rows), ''
        if sql == 'SHOW server_version_num':
            return 0, '%d%s' % (self.server_version_num, RECORD_SEP), ''
        if sql.startswith('SELECT datname FROM pg_catalog.pg_database'):
            return 0, ''.join(d + RECORD_SEP for d in self.databases), ''
        if sql.startswith('SELECT 1 FROM pg_catalog.pg_database'):
            name = sql.split("datname = E'", 1)[1][:-1].replace("''", "'")
            return 0, ('1' + RECORD_SEP) if name in self.existing else '', ''
        if sql.startswith('CREATE DATABASE') or sql.startswith('DROP DATABASE'):
            return 0, '', ''
        raise AssertionError('unexpected SQL: %s' % sql)

    def do_gpg(self, argv, env, data):
        assert data, 'gpg got no passphrase on stdin'
        source, target = argv[-1], argv[argv.index('--output') + 1]
        with open(source, 'rb') as handle:
            content = handle.read()
        if '--symmetric' in argv:
            out = b'GPG[' + data.encode() + b']' + content
        else:
            prefix = b'GPG[' + data.encode() + b']'
            if not content.startswith(prefix):
                return 2, '', 'gpg: decryption failed: Bad session key\n'
            out = content[len(prefix):]
        with open(target, 'wb') as handle:
            handle.write(out)
        return 0, '', ''

    def do_gpgconf(self, argv, env, data):
        return 0, '', ''


HELP_TEXT = """pg_dump dumps a database as a text file or to other formats.

General options:
  -f, --file=FILENAME          output file or directory name
  -F, --format=c|d|t|p         output file format (custom, directory, tar,
  -j, --jobs=NUM               use this many parallel jobs to dump
  -v, --verbose                verbose mode
  -Z, --compress=METHOD[:DETAIL]
  --lock-wait-timeout=TIMEOUT  fail after waiting TIMEOUT for a table lock

Options controlling the output content:
  -N, --exclude-schema=PATTERN do NOT dump the specified schema(s)
  -O, --no-owner               skip restoration of object ownership in
  --exclude-table-data=PATTERN do NOT dump data for the specified table(s)
  --no-comments                do not dump comments
  --serializable-deferrable    wait until the dump can run without anomalies
  --snapshot=SNAPSHOT          use given snapshot for the dump
  --no-unlogged-table-data     do not dump unlogged table data

Connection options:
  -d, --dbname=DBNAME      database to dump
  -h, --host=HOSTNAME      database server host or socket directory
  -p, --port=PORT          database server port number
  -U, --username=NAME      connect as specified database user
  -w, --no-password        never prompt for password
"""


class FakeSession(object):
    """Stands in for dump_session.ForkedSession."""

    def __init__(self, dbname, tables, large_objects=0, snapshot='00000003-0000001B-1', fail_open=None,
                 server_version_num=170012, log=None):
        self.dbname = dbname
        self.tables = tables
        self.large_objects = large_objects
        self.snapshot = snapshot
        self.fail_open = fail_open
        self.server_version_num = server_version_num
        self.state = 'new'
        self.log = log if log is not None else []

    def open(self):
        self.log.append(('open', self.dbname))
        if self.fail_open:
            from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
            raise EngineError(self.fail_open)
        self.state = 'open'
        return {'snapshot': self.snapshot, 'server_version_num': self.server_version_num,
                'server_version': '17.12 (Debian 17.12-1)', 'backend_pid': 4242,
                'database': {'name': self.dbname, 'encoding': 'UTF8', 'collate': 'C.UTF-8', 'ctype': 'C.UTF-8',
                             'locale_provider': 'libc', 'locale': None}}

    def counts(self):
        # The dump must already be running/finished when the counts are collected (same snapshot).
        self.log.append(('counts', self.dbname))
        return {'tables': [dict(t) for t in self.tables], 'large_objects': self.large_objects, 'count_seconds': 0.01}

    def close(self):
        self.log.append(('close', self.dbname))
        self.state = 'closed'

    def abort(self):
        self.log.append(('abort', self.dbname))
        self.state = 'aborted'


class Sessions(object):
    """A session factory remembering what it made."""

    def __init__(self, tables=None, large_objects=0, fail_open=None, restored=None):
        self.tables = tables if tables is not None else DEFAULT_TABLES
        self.large_objects = large_objects
        self.fail_open = fail_open
        self.restored = restored  # tables to report for a restored database (export_snapshot=False)
        self.made = []
        self.log = []

    def __call__(self, dbname, export_snapshot=True):
        tables = self.tables if export_snapshot or self.restored is None else self.restored
        session = FakeSession(dbname, tables, self.large_objects, fail_open=self.fail_open, log=self.log,
                              snapshot='00000003-0000001B-1' if export_snapshot else None)
        self.made.append(session)
        return session


class Clock(object):
    def __init__(self, start=1795000000.0, step=1.0):
        self.now = start
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now


def no_owner(path):
    return None


def tree(root):
    """Relative paths of everything under root, for assertions."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def copy_unit(src, dst):
    shutil.copytree(src, dst)
