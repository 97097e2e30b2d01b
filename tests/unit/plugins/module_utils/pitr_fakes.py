# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake database host for the point-in-time recovery tests: the process boundary only.

PitrHost is the `run` callable handed to process.Runner (and its `which`). It answers the argv
lists the engine runs (pgbackrest, pg_waldump, pg_controldata, pg_lsclusters, psql, pg_ctl,
systemctl, coreutils) with the outputs captured on a Debian 13 test host (tests/unit/fixtures/pitr),
keeps the little state a restore changes (is the server running, was the data directory moved,
what did tee write) and records every call. Everything above it is the real engine.
"""

from __future__ import annotations

import copy
import json
import os

from ansible_collections.pgops.backup.plugins.module_utils.postgres import FIELD_SEP, RECORD_SEP
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures', 'pitr')
DATA = '/var/lib/postgresql/17/main'
LOG = '/var/log/postgresql/postgresql-17-main.log'
SYSTEM_ID = '7710549402095226222'
TMP = '/tmp/pgops-pitr.Ab12Cd'
# Backups in info-timelines-2.55.1.json: a full on timeline 1 and a full on timeline 2.
FIRST, SECOND = '20261121-092006F', '20261121-092940F'
FIRST_STOP, SECOND_STOP = 1795252808, 1795253381


WRITING_SQL = ('pg_promote', 'ALTER SYSTEM', 'pg_create_restore_point')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def info_doc():
    return json.loads(fixture('info-timelines-2.55.1.json'))


def rows(*records):
    return RECORD_SEP.join(FIELD_SEP.join('' if v is None else str(v) for v in r) for r in records) + RECORD_SEP


def _strip_runuser(argv):
    if argv and os.path.basename(argv[0]) == 'runuser' and '--' in argv:
        return argv[argv.index('--') + 1:], argv[2]
    return argv, None


def _option(argv, name):
    for arg in argv:
        if arg.startswith('--%s=' % name):
            return arg.split('=', 1)[1]
    return None


class PitrHost(object):
    """See the module docstring. Attributes are the host's state; tests change them freely."""

    def __init__(self, info=None):
        self.calls = []
        self.info = info if info is not None else info_doc()
        self.pgbackrest_version = '2.55.1'
        self.cluster = {'version': '17', 'name': 'main', 'port': 5432, 'status': 'online', 'owner': 'postgres',
                        'data': DATA, 'log': LOG}
        self.running = True
        self.in_recovery = False
        self.system_id = SYSTEM_ID
        self.segment_size = 16777216
        self.hot_standby = 'on'
        self.current_lsn = '0/E0001A0'
        self.archiver = ('00000005000000000000000D', '', 'f')
        self.xid_status = 'committed'
        # archive-get: every segment of the repository listings plus the history files.
        self.archive = set()
        self.listings = {}
        for tli in '12345':
            directory = '0000000%s00000000' % tli
            text = fixture('repo-ls-%s-2.55.1.json' % directory)
            self.listings[directory] = text
            self.archive |= set(k[:24] for k in json.loads(text) if len(k) > 24 and k[24] == '-')
        self.histories = dict(('0000000%s.history' % t, fixture('0000000%s.history' % t)) for t in '345')
        self.histories['00000002.history'] = '1\t0/4037EC8\tbefore 2026-11-21 09:20:18.126006+00\n'
        self.archive |= set(self.histories)
        # pg_waldump answers: (segment, filter) -> stdout; filter is 'Transaction', 'XLOG', 'xid=N' or 'start'.
        self.waldump = {}
        self.paths = {DATA, DATA + '/global/pg_control', '/var/lib/postgresql/17', '/var/lib/postgresql'}
        self.dirs = {DATA: ['PG_VERSION', 'base', 'global', 'pg_wal', 'pg_tblspc'], DATA + '/pg_tblspc': [],
                     '/var/run/postgresql': ['.s.PGSQL.5432', '.s.PGSQL.5432.lock']}
        self.free = 50 * 1024 ** 3
        self.files = {}
        self.server_log = ''
        self.states = []          # answers to the recovery state query, in order (None: not accepting connections)
        self.state = None         # the answer once the list is used up
        self.restore_rc = 0
        self.on_start = None      # callable(host) run when the server is started
        self.promote_answer = 't'
        self.scratch_running = {}
        self.check_hook = None
        self.controldata = fixture('controldata-17.out')
        self.archive_mode = 'on'
        self.archive_command = 'pgbackrest --stanza=main archive-push %p'
        self.mounts = set()       # paths that are mount points
        self.links = {}           # symbolic links: path -> target

    # --- the Runner side -------------------------------------------------------------------------

    def runner(self, run_as='postgres'):
        return Runner(run=self, which=self.which, run_as=run_as)

    def which(self, name):
        return name if name.startswith('/') else '/usr/bin/%s' % name

    @property
    def argvs(self):
        return [c['argv'] for c in self.calls]

    def commands(self):
        return [' '.join(c['argv']) for c in self.calls]

    def ran(self, *words):
        """Calls whose argv contains every word (as a substring of the joined command)."""
        return [c for c in self.calls if all(w in ' '.join(c['argv']) for w in words)]

    def mutating(self):
        """Commands that change the host (reading, temporary WAL copies and the journal excluded)."""
        out = []
        for call in self.calls:
            argv = call['argv']
            line = ' '.join(argv)
            program = os.path.basename(argv[0])
            words = [a for a in argv[1:] if not a.startswith('-')]
            if program in ('systemctl', 'mv', 'install', 'tee', 'mkdir', 'chmod') \
                    or (program == 'pgbackrest' and words and words[0] in ('restore', 'stanza-create', 'backup')) \
                    or (program == 'psql' and any(w in line for w in WRITING_SQL)) \
                    or (program == 'pg_ctl' and argv[1] in ('start', 'stop', 'promote')) \
                    or (program == 'rm' and not line.startswith('rm -rf --one-file-system -- ' + TMP)
                        and not line.startswith('rm -f -- ' + TMP)):
                out.append(line)
        return out

    def __call__(self, argv, env=None, data=None, stream=None):
        argv = [str(a) for a in argv]
        inner, user = _strip_runuser(argv)
        self.calls.append({'argv': inner, 'user': user, 'env': env or {}, 'data': data})
        program = os.path.basename(inner[0])
        handler = getattr(self, '_' + program.replace('-', '_'), None)
        if handler is None:
            raise AssertionError('PitrHost: no program %r (%r)' % (program, inner))
        rc, out, err = handler(inner, env or {}, data)
        if stream is not None:
            for line in out.splitlines():
                stream(line)
        return rc, out, err

    # --- pgBackRest ------------------------------------------------------------------------------

    def _pgbackrest(self, argv, env, data):
        words = [a for a in argv[1:] if not a.startswith('--')]
        command = words[0]
        if command == 'version':
            return 0, 'pgBackRest %s\n' % self.pgbackrest_version, ''
        if command == 'info':
            return 0, json.dumps(self.info, separators=(',', ':'), sort_keys=True), ''
        if command == 'archive-get':
            name, dest = words[1], words[2]
            if name in self.archive:
                self.files[dest] = self.histories.get(name, '')
                return 0, '', ''
            return 1, '', 'P00   INFO: unable to find %s in the archive\n' % name
        if command == 'repo-ls':
            directory = words[1].rsplit('/', 1)[1]
            return 0, self.listings.get(directory, '{".":{"type":"path"}}'), ''
        if command == 'restore':
            if self.restore_rc:
                return self.restore_rc, '', 'P00  ERROR: [040]: unable to restore\n'
            self.restored_argv = argv
            return 0, 'P00   INFO: restore command end: completed successfully\n', ''
        if command == 'check':
            if self.check_hook:
                self.check_hook(self)
            return 0, 'P00   INFO: check command end: completed successfully\n', ''
        raise AssertionError('PitrHost: pgbackrest %s' % command)

    # --- PostgreSQL programs ---------------------------------------------------------------------

    def _pg_waldump(self, argv, env, data):
        assert env.get('TZ') == 'UTC', 'pg_waldump must run with TZ=UTC'
        segment = argv[-1]
        xid = _option(argv, 'xid')
        if xid:
            key = 'xid=%s' % xid
        elif _option(argv, 'start'):
            key = 'start'
        else:
            key = _option(argv, 'rmgr') or 'all'
        return 0, self.waldump.get((segment, key), ''), ''

    def _pg_controldata(self, argv, env, data):
        return 0, self.controldata, ''

    def _pg_lsclusters(self, argv, env, data):
        c = self.cluster
        line = '%s %s %d %s %s %s %s\n' % (c['version'], c['name'], c['port'], c['status'], c['owner'], c['data'],
                                           c['log'])
        return 0, line, ''

    def _pg_ctl(self, argv, env, data):
        action = argv[1]
        data_dir = argv[argv.index('-D') + 1]
        scratch = data_dir != DATA
        if action == 'status':
            running = self.scratch_running.get(data_dir) if scratch else self.running
            return (0, 'pg_ctl: server is running\n', '') if running else (3, '', 'pg_ctl: no server running\n')
        if action == 'start':
            self.scratch_running[data_dir] = True
            self._started()
            return 0, 'server starting\n', ''
        if action == 'stop':
            self.scratch_running[data_dir] = False
            return 0, 'server stopped\n', ''
        raise AssertionError(argv)

    def _started(self):
        if self.on_start:
            self.on_start(self)

    def _psql(self, argv, env, data):
        sql = argv[argv.index('-c') + 1]
        self.last_psql_port = int(argv[argv.index('-p') + 1])
        if 'pg_stat_archiver' in sql:
            if not self.running:
                return 2, '', 'psql: error: connection refused\n'
            return 0, rows(['t' if self.in_recovery else 'f', self.system_id, self.segment_size, self.hot_standby,
                            None if self.in_recovery else self.current_lsn] + list(self.archiver)), ''
        if sql.startswith('SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()'):
            state = self.states.pop(0) if self.states else self.state
            if state is None:
                return 2, '', 'psql: error: FATAL:  the database system is not yet accepting connections\n'
            return 0, rows(state), ''
        if 'pg_promote' in sql:
            if self.promote_answer == 't':
                self.state = ['f'] + list((self.state or ['t', '0/0', '', 'f', '5', ''])[1:4]) + ['6', '']
                self.states = []
            return 0, rows([self.promote_answer]), ''
        if sql == 'CHECKPOINT':
            return 0, '', ''
        if sql.startswith('ALTER SYSTEM') or 'pg_reload_conf' in sql:
            return 0, rows(['t']) if 'pg_reload_conf' in sql else '', ''
        if 'txid_status' in sql:
            if self.xid_status == 'future':
                return 1, '', 'ERROR:  transaction ID 999999 is in the future\n'
            return 0, rows([self.xid_status]), ''
        if sql == 'SHOW archive_mode':
            return 0, rows(['off']), ''
        if 'pg_create_restore_point' in sql:
            return 0, rows(['0/D018E60', '00000004000000000000000D', '2026-11-21T09:31:32.214960Z',
                            '1795253492214960']), ''
        if sql == "SELECT current_setting('archive_mode'), current_setting('archive_command')":
            return 0, rows([self.archive_mode, self.archive_command]), ''
        if sql.startswith('SELECT pg_is_in_recovery(), (SELECT system_identifier'):
            return 0, rows(['t' if self.in_recovery else 'f', self.system_id, None if self.in_recovery else 4]), ''
        raise AssertionError('PitrHost: psql %r' % sql)

    # --- systemd and coreutils -------------------------------------------------------------------

    def _systemctl(self, argv, env, data):
        if 'stop' in argv:
            self.running = False
            self.cluster['status'] = 'down'
        elif 'start' in argv:
            self.running = True
            self.cluster['status'] = 'online'
            self._started()
        return 0, '', ''

    def _test(self, argv, env, data):
        if argv[1] == '-L':
            return (0 if argv[2] in self.links else 1), '', ''
        return (0 if argv[2] in self.paths else 1), '', ''

    def _mountpoint(self, argv, env, data):
        return (0 if argv[-1] in self.mounts else 32), '', ''

    def _readlink(self, argv, env, data):
        path = argv[-1]
        return (0, self.links[path] + '\n', '') if path in self.links else (1, '', '')

    def _ls(self, argv, env, data):
        path = argv[-1]
        if path not in self.dirs:
            return 2, '', 'ls: cannot access %r: No such file or directory\n' % path
        return 0, ''.join('%s\n' % n for n in self.dirs[path]), ''

    def _df(self, argv, env, data):
        return 0, ('Filesystem 1-blocks Used Available Capacity Mounted on\n'
                   '/dev/vda 270000000000 28000000000 %d 27%% /\n' % self.free), ''

    def _stat(self, argv, env, data):
        if argv[2] == '%G':
            return 0, 'postgres\n', ''
        return 0, '%d\n' % 4096, ''

    def _tail(self, argv, env, data):
        return 0, self.server_log, ''

    def _cat(self, argv, env, data):
        path = argv[-1]
        if path in self.files:
            return 0, self.files[path], ''
        return 1, '', 'cat: %s: No such file or directory\n' % path

    def _tee(self, argv, env, data):
        self.files[argv[1]] = data
        self.paths.add(argv[1])
        return 0, data, ''

    def _mktemp(self, argv, env, data):
        return 0, TMP + '\n', ''

    def _mv(self, argv, env, data):
        src, dest = argv[-2], argv[-1]
        self.paths.discard(src)
        self.paths.add(dest)
        self.dirs[dest] = self.dirs.pop(src, [])
        return 0, '', ''

    def _install(self, argv, env, data):
        self.paths.add(argv[-1])
        self.dirs[argv[-1]] = []
        return 0, '', ''

    def _mkdir(self, argv, env, data):
        self.paths.add(argv[-1])
        self.dirs.setdefault(argv[-1], [])
        return 0, '', ''

    def _rm(self, argv, env, data):
        for path in argv[argv.index('--') + 1:]:
            self.paths.discard(path)
            self.dirs.pop(path, None)
            self.files.pop(path, None)
        return 0, '', ''

    def _chmod(self, argv, env, data):
        return 0, '', ''

    def _logger(self, argv, env, data):
        self.journal = getattr(self, 'journal', []) + [argv[-1]]
        return 0, '', ''


NOW = 1795253800.0  # 2026-11-21 09:36:40 UTC, after everything in the fixtures


def commit_line(xid, lsn, when):
    return ('rmgr: Transaction len (rec/tot):     34/    34, tx:        %d, lsn: %s, prev 0/0D019000, '
            'desc: COMMIT %s UTC\n' % (xid, lsn, when))


class Clock(object):
    """The engine's injected clock: sleeping advances it."""

    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def paused_at(lsn, last_us, timeline=5):
    """The state query's answer while paused at the target."""
    return ['t', lsn, last_us, 't', timeline, '']


def deep(doc):
    return copy.deepcopy(doc)
