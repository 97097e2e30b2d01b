# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake database host for the restore drill tests: the process boundary only.

DrillHost is the `run` callable handed to process.Runner (and its `which`). It answers the argv
lists a drill runs (pgbackrest, pg_lsclusters, pg_ctl, pg_controldata, psql, pg_amcheck,
pg_checksums, initdb, pg_restore, coreutils) the way a Debian 13 host with PostgreSQL 17 would, keeps
the little state a drill changes (which paths exist, which servers run, what tee wrote) and records
every call. Attributes tune the answers (a corrupt repository, a stale heartbeat, a failing query).
Everything above it is the real engine.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.pgops.backup.plugins.module_utils import restore_drill_checks as checks
from ansible_collections.pgops.backup.plugins.module_utils.dump_session import LARGE_OBJECTS_SQL, TABLES_SQL
from ansible_collections.pgops.backup.plugins.module_utils.pgserver import STATE_SQL
from ansible_collections.pgops.backup.plugins.module_utils.postgres import FIELD_SEP, RECORD_SEP
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pg_dump_fakes import FakeHost

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures', 'pitr')
PROD_DATA = '/var/lib/postgresql/17/main'
PROD_PORT = 5432
SOCKETS = '/var/run/postgresql'
PG_LIB_DIR = '/usr/lib/postgresql'
BIN = '/usr/lib/postgresql/17/bin'
# Backups in info-timelines-2.55.1.json (stanza main, PostgreSQL 17).
FIRST, NEWEST = '20261121-092006F', '20261121-092940F'
FIRST_STOP, NEWEST_STOP = 1795252808, 1795253381
NOW = 1795260000.0


def fixture(name, directory=FIXTURES):
    with open(os.path.join(directory, name)) as handle:
        return handle.read()


def drill_fixture(name):
    return fixture(name, os.path.join(FIXTURES, '..', 'restore_drill'))


def info_doc():
    return json.loads(fixture('info-timelines-2.55.1.json'))


def rows(*records):
    return ''.join(FIELD_SEP.join('' if v is None else str(v) for v in r) + RECORD_SEP for r in records)


def option(argv, name):
    prefix = '--%s=' % name
    for arg in argv:
        if arg.startswith(prefix):
            return arg[len(prefix):]
    return None


def _dbname(argv):
    value = None
    if argv[-1].startswith("dbname='"):
        value = argv[-1]
    elif '-d' in argv:
        value = argv[argv.index('-d') + 1]
    value = value or option(argv, 'dbname') or 'postgres'
    if value.startswith("dbname='"):
        value = value[len("dbname='"):-1].replace("\\'", "'").replace('\\\\', '\\')
    return value


def _port(argv):
    if '-p' in argv:
        return int(argv[argv.index('-p') + 1])
    value = option(argv, 'port')
    return int(value) if value else PROD_PORT


class Clock(object):
    """Time that moves on by `step` seconds at every reading (and by the slept time)."""

    def __init__(self, start=NOW, step=0.25):
        self.now = start
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class DrillHost(object):
    """See the module docstring."""

    def __init__(self, version='17', info=None):
        self.calls = []
        self.version = version
        self.prod_data = '/var/lib/postgresql/%s/main' % version
        self.info = info if info is not None else info_doc()
        self.paths = {self.prod_data, '/var/lib/postgresql', '/var/lib/postgresql/' + version, SOCKETS, PG_LIB_DIR,
                      '%s/%s/bin/initdb' % (PG_LIB_DIR, version)}
        self.dirs = {SOCKETS: ['.s.PGSQL.5432', '.s.PGSQL.5432.lock'], PG_LIB_DIR: [version]}
        self.files = {}
        self.running = {}
        self.free = 50 * 1024 ** 3
        # other file systems: mount point -> (device, size, free); the longest mount point holding a path wins
        self.mounts = {}
        self.links = {}  # readlink -f
        self.missing = set()
        # pgBackRest restore
        self.restore_rc = 0
        self.restore_err = ''
        self.restore_out = ''
        self.verify_out = ''
        # the scratch server
        self.server_log = fixture('server-log-immediate-promoted-17.log')
        self.promoted_state = ['f', '0/3000050', '', 'f', '3', '']
        self.start_fails = None           # a FATAL line: the server stops right after starting
        self.settings = {'archive_mode': 'off', 'data_checksums': 'on', 'server_version_num': '%s0012' % version}
        self.databases = ['appdb', 'postgres']
        # heartbeat: {database: (epoch, host)} in the restored copy; whether production has the table
        self.heartbeat = {'postgres': (NEWEST_STOP - 40.0, 'db1.example.com')}
        self.production_heartbeat = True
        self.production_heartbeat_since = None  # epoch; None: a table from before the `since` column
        # checks
        self.amcheck = {}                 # database -> (rc, stdout, stderr)
        self.unreadable = {}              # database -> [(table, error)]
        self.queries = {}                 # sql -> (rc, stdout rows or stderr)
        self.checksums = (0, 'Checksum operation completed\nFiles scanned:   1243\nBlocks scanned:  3981\n'
                             'Bad checksums:  0\nData checksum version: 1\n', '')
        # pg_dump source: tables of restored databases ({database: [(oid, schema, name, kind, rows)]})
        self.restored_tables = {}
        self.restored = []
        self.globals_sql = []
        self.sql = []

    # --- the Runner side -------------------------------------------------------------------------

    def runner(self, run_as='postgres'):
        return Runner(run=self, which=self.which, run_as=run_as)

    def which(self, name):
        if os.path.basename(name) in self.missing:
            return None
        return name if name.startswith('/') else '/usr/bin/%s' % name

    def __call__(self, argv, env=None, data=None, stream=None):
        argv = [str(a) for a in argv]
        inner = argv[argv.index('--') + 1:] if os.path.basename(argv[0]) == 'runuser' else argv
        self.calls.append({'argv': inner, 'env': dict(env or {}), 'data': data, 'runuser': inner is not argv})
        program = os.path.basename(inner[0])
        handler = getattr(self, '_' + program.replace('-', '_'), None)
        if handler is None:
            raise AssertionError('DrillHost: no program %r (%r)' % (program, inner))
        rc, out, err = handler(inner, data)
        if stream is not None:
            for line in out.splitlines():
                stream(line)
        return rc, out, err

    def commands(self):
        return [' '.join(c['argv']) for c in self.calls]

    def ran(self, *words):
        return [c['argv'] for c in self.calls if all(w in ' '.join(c['argv']) for w in words)]

    def argvs(self, program):
        """The argv lists of one program, in order."""
        return [c['argv'] for c in self.calls if os.path.basename(c['argv'][0]) == program]

    def programs(self):
        return [os.path.basename(c['argv'][0]) for c in self.calls]

    # --- pgBackRest --------------------------------------------------------------------------------

    def _pgbackrest(self, argv, data):
        words = [a for a in argv[1:] if not a.startswith('--')]
        command = words[0]
        if command == 'version':
            return 0, 'pgBackRest 2.55.1\n', ''
        if command == 'info':
            return 0, json.dumps(self.info, separators=(',', ':'), sort_keys=True), ''
        if command == 'restore':
            if self.restore_rc:
                return self.restore_rc, self.restore_out, self.restore_err
            target = option(argv, 'pg1-path')
            self.paths.add(target)
            self.dirs[target] = ['PG_VERSION', 'base', 'global', 'postgresql.auto.conf']
            return 0, 'P00   INFO: restore command end: completed successfully\n', ''
        if command == 'verify':
            assert option(argv, 'set'), 'verify of the whole repository'
            return 0, self.verify_out, ''
        raise AssertionError('DrillHost: pgbackrest %s must not run in a drill' % command)

    # --- PostgreSQL programs ---------------------------------------------------------------------

    def _pg_lsclusters(self, argv, data):
        return 0, '%s main %d online postgres %s /var/log/postgresql/postgresql-%s-main.log\n' % (
            self.version, PROD_PORT, self.prod_data, self.version), ''

    def _pg_controldata(self, argv, data):
        text = fixture('controldata-17.out')
        if self.settings['data_checksums'] == 'on':
            text = text.replace('Data page checksum version:           0', 'Data page checksum version:           1')
        return 0, text, ''

    def _initdb(self, argv, data):
        target = argv[argv.index('-D') + 1]
        self.paths.add(target)
        self.dirs[target] = ['PG_VERSION', 'base', 'global', 'postgresql.conf']
        self.files[target + '/postgresql.conf'] = '# initdb\n'
        return 0, 'Success.\n', ''

    def _pg_ctl(self, argv, data):
        action = argv[1]
        data_dir = argv[argv.index('-D') + 1]
        if action == 'status':
            return (0, 'pg_ctl: server is running\n', '') if self.running.get(data_dir) else (3, '', 'no server running\n')
        if action == 'start':
            assert data_dir != self.prod_data, 'the drill started the production cluster'
            options = argv[argv.index('-o') + 1]
            assert '-c archive_mode=off' in options
            self.port_of_start = int(re.search(r'-c port=(\d+)', options).group(1))
            self.running[data_dir] = self.start_fails is None
            log = argv[argv.index('-l') + 1]
            if self.start_fails:
                self.files[log] = '2026-11-21 09:20:59.318 GMT [562] FATAL:  %s\n' % self.start_fails
            else:
                self.files[log] = self.server_log
            self.dirs[SOCKETS] = self.dirs[SOCKETS] + ['.s.PGSQL.%d' % self.port_of_start]
            return 0, 'server starting\n', ''
        if action == 'stop':
            assert data_dir != self.prod_data, 'the drill stopped the production cluster'
            self.running[data_dir] = False
            self.dirs[SOCKETS] = [n for n in self.dirs[SOCKETS] if n in ('.s.PGSQL.5432', '.s.PGSQL.5432.lock')]
            return 0, 'server stopped\n', ''
        raise AssertionError(argv)

    def _psql(self, argv, data):
        port = _port(argv)
        db = _dbname(argv)
        if '-f' in argv:
            path = argv[argv.index('-f') + 1]
            with open(path) as handle:
                self.globals_sql.append((db, handle.read()))
            return 0, '', ''
        sql = argv[argv.index('-c') + 1]
        self.sql.append((port, db, sql))
        if port == PROD_PORT:
            if sql == checks.HEARTBEAT_EXISTS_SQL:
                return 0, rows(['t' if self.production_heartbeat else 'f']), ''
            if sql == checks.HEARTBEAT_SINCE_SQL and self.production_heartbeat_since is not None:
                return 0, rows([repr(self.production_heartbeat_since)]), ''
            if sql == checks.HEARTBEAT_SINCE_SQL:
                return 1, '', 'ERROR:  column "since" does not exist\n'
            raise AssertionError('DrillHost: the drill ran %r on production' % sql)
        if sql == STATE_SQL:
            return 0, rows(self.promoted_state), ''
        if sql == checks.ISOLATION_SQL:
            data_dir = [d for d, up in self.running.items() if up][0]
            return 0, rows([self.settings['archive_mode'], port, data_dir, self.settings.get('listen_addresses', ''), 'f',
                            self.settings['data_checksums'],
                            self.settings['server_version_num']]), ''
        if sql == checks.DATABASES_SQL:
            return 0, rows(*[[d] for d in self.databases]), ''
        if sql == checks.HEARTBEAT_EXISTS_SQL:
            if db not in self.databases:
                return 2, '', 'psql: error: FATAL:  database "%s" does not exist\n' % db
            return 0, rows(['t' if db in self.heartbeat else 'f']), ''
        if sql == checks.HEARTBEAT_READ_SQL:
            epoch, host = self.heartbeat[db]
            return 0, rows([repr(epoch), host]), ''
        if sql == checks.FULL_READ_SQL:
            bad = self.unreadable.get(db, [])
            err = ''.join('WARNING:  pgops-read-failed %s\n' % json.dumps({'table': t, 'sqlstate': 'XX001', 'error': e})
                          for t, e in bad)
            err += 'WARNING:  pgops-read-done %s\n' % json.dumps({'tables': 70, 'failed': len(bad), 'bytes': 5791744})
            return 0, '', err
        if sql in self.queries:
            rc, text = self.queries[sql]
            return (0, text, '') if rc == 0 else (rc, '', text)
        # pg_dump source: the restore and the counts
        if sql == 'SHOW server_version_num':
            return 0, rows([self.settings['server_version_num']]), ''
        if sql.startswith('SELECT 1 FROM pg_catalog.pg_database'):
            name = sql.split("datname = E'", 1)[1][:-1].replace("''", "'")
            return 0, rows(['1']) if name in self.databases else '', ''
        if sql.startswith('DROP DATABASE'):
            assert db == 'template1', 'DROP DATABASE must run from template1'
            return 0, '', ''
        if sql.startswith('CREATE DATABASE'):
            assert db == 'template1'
            return 0, '', ''
        if sql == TABLES_SQL:
            return 0, rows(*[[oid, schema, name, kind, 'postgres', 'f', 'p', 't']
                             for oid, schema, name, kind, _n in self.restored_tables.get(db, [])]), ''
        if 'UNION ALL' in sql or sql.startswith('SELECT ') and '::bigint, count(*) FROM ONLY' in sql:
            counts = dict((oid, n) for oid, _s, _name, _k, n in self.restored_tables.get(db, []))
            oids = [int(o) for o in re.findall(r'SELECT (\d+)::bigint', sql)]
            return 0, rows(*[[o, counts[o]] for o in oids]), ''
        if sql == LARGE_OBJECTS_SQL:
            return 0, rows([0]), ''
        raise AssertionError('DrillHost: psql %r on port %d' % (sql, port))

    def _pg_restore(self, argv, data):
        assert _port(argv) != PROD_PORT, 'pg_restore into production'
        target = _dbname(argv)
        self.restored.append((target, argv[-1]))
        if target not in self.databases:
            self.databases.append(target)
        return 0, '', ''

    def _pg_amcheck(self, argv, data):
        assert '--install-missing' in argv and _port(argv) != PROD_PORT
        db = _dbname(argv)
        if db in self.amcheck:
            return self.amcheck[db]
        return 0, '', '  0/70 relations (0%),   0/842 pages (0%)\r70/70 relations (100%), 842/842 pages (100%)\n'

    def _pg_checksums(self, argv, data):
        assert not any(self.running.values()), 'pg_checksums on a running server'
        return self.checksums

    def _gpg(self, argv, data):
        return FakeHost.do_gpg(self, argv, None, data)

    def _gpgconf(self, argv, data):
        return 0, '', ''

    # --- coreutils ---------------------------------------------------------------------------------

    def _test(self, argv, data):
        return (0 if argv[2] in self.paths else 1), '', ''

    def _ls(self, argv, data):
        path = argv[-1]
        if path not in self.dirs:
            return 2, '', 'ls: cannot access %r: No such file or directory\n' % path
        return 0, ''.join('%s\n' % n for n in self.dirs[path]), ''

    def _df(self, argv, data):
        path = argv[-1]
        device, size, free, mount = '/dev/vda', 270000000000, self.free, '/'
        for point in sorted(self.mounts, key=len):
            if path == point or path.startswith(point.rstrip('/') + '/'):
                (device, size, free), mount = self.mounts[point], point
        return 0, ('Filesystem 1-blocks Used Available Capacity Mounted on\n'
                   '%s %d %d %d 27%% %s\n' % (device, size, size - free, free, mount)), ''

    def _readlink(self, argv, data):
        return 0, self.links.get(argv[-1], argv[-1]) + '\n', ''

    def _stat(self, argv, data):
        return 1, '', 'stat: cannot statx: No such file or directory\n'

    def _tail(self, argv, data):
        return 0, self.files.get(argv[-1], ''), ''

    def _cat(self, argv, data):
        path = argv[-1]
        if path in self.files:
            return 0, self.files[path], ''
        return 1, '', 'cat: %s: No such file or directory\n' % path

    def _tee(self, argv, data):
        path = argv[-1]
        if '-a' in argv:
            self.files[path] = self.files.get(path, '') + data
        else:
            self.files[path] = data
        self.paths.add(path)
        return 0, data, ''

    def _mkdir(self, argv, data):
        self.paths.add(argv[-1])
        self.dirs.setdefault(argv[-1], [])
        return 0, '', ''

    def _chmod(self, argv, data):
        return 0, '', ''

    def _rm(self, argv, data):
        for path in argv[argv.index('--') + 1:]:
            assert not path.startswith(self.prod_data), 'the drill removed production files'
            self.paths.discard(path)
            self.dirs.pop(path, None)
            self.files.pop(path, None)
        return 0, '', ''


def mutating(host):
    """Commands that change something: restores, server starts and stops, writes, removals."""
    out = []
    for call in host.calls:
        argv = call['argv']
        program = os.path.basename(argv[0])
        words = [a for a in argv[1:] if not a.startswith('-')]
        if program in ('tee', 'mkdir', 'rm', 'chmod', 'initdb', 'pg_restore', 'pg_amcheck') \
                or (program == 'pgbackrest' and words and words[0] not in ('version', 'info')) \
                or (program == 'pg_ctl' and argv[1] in ('start', 'stop')):
            out.append(' '.join(argv))
    return out
