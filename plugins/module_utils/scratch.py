# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scratch instances: a pgBackRest backup restored into its own data directory and port on this
host, started with pg_ctl as the cluster owner, queried, then stopped and removed.

Used for restores "elsewhere" (forensics on the pre-incident state) and for restore drills.
A scratch instance can never push WAL into the source stanza: pgBackRest writes
archive_mode=off into its postgresql.auto.conf, its own postgresql.conf says so again, and the
server is started with `-c archive_mode=off`, which nothing in a configuration file can override.
It listens on a Unix socket only (never TCP) and accepts only the OS user postgres (pg_hba.conf:
`local all postgres peer`, nothing else), and everything it owns sits under one base directory
next to a marker file: remove() deletes nothing it did not create.

Before a restore, check_space() keeps a reserve on the file systems production writes to: a
scratch restore whose base directory shares a file system with the data directory or pg_wal of a
cluster of this host (pg_lsclusters; pg_wal's symlink followed) is refused when it would leave less
than the reserve free there (default: the larger of 10 % of that file system and 1 GiB), and any
scratch restore is refused when its file system lacks the space outright.

    inst = ScratchInstance(runner, pgbr, '17', name='drill')
    inst.create(inst.restore_argv(Target('latest'), backup_set=None))
    inst.start()
    inst.wait(GOAL_PROMOTED, timeout=600)
    rows = inst.psql().rows('SELECT count(*) FROM t')
    inst.remove()
"""

import json
import os
import re
import time

from .pgbackrest import error_from_result
from .pgserver import (GOAL_PAUSED, ServerProbe, bindir, controldata, directory_entries, path_exists, pg_binary,
                       wait_for_recovery)
from .postgres import Psql, list_clusters
from .process import EngineError
from .records import utc_now

DEFAULT_BASE_DIR = '/var/lib/postgresql/pgops-scratch'
DEFAULT_SOCKET_DIR = '/var/run/postgresql'
FIRST_PORT = 5433
PORT_RANGE = 200
NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]{0,39}$')
_SAFE_PATH_RE = re.compile(r'^/[A-Za-z0-9_./-]+$')
MARKER_SUFFIX = '.pgops-scratch.json'
HBA = ('# pgops.backup scratch instance: the OS user postgres over the local socket, nobody else\n'
       'local all postgres peer\n')
GIB = 1024 ** 3
RESERVE_DEFAULT = 'auto'
RESERVE_PERCENT = 10
RESERVE_MIN_BYTES = GIB
_RESERVE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b?|b)?\s*$', re.IGNORECASE)
_RESERVE_UNITS = {'': 1, 'b': 1, 'k': 1024, 'm': 1024 ** 2, 'g': GIB, 't': 1024 ** 4}


def _safe_path(path, what):
    path = os.path.normpath(path or '')
    if not _SAFE_PATH_RE.match(path) or path == '/' or path.count('/') < 2:
        raise EngineError('%s %r must be an absolute path below a top-level directory, made of letters, digits, '
                          '_ . - and /' % (what, path))
    return path


def parse_reserve(value):
    """The reserve setting: None, '' or 'auto' -> None (the default rule); '15%' -> ('percent', 15.0);
    '2G', '500MiB', 1073741824, 0 -> ('bytes', n). 0 turns the reserve off."""
    if value is None or (not isinstance(value, (int, float)) and str(value).strip().lower() in ('', RESERVE_DEFAULT)):
        return None
    if isinstance(value, bool):
        value = str(value)
    match = _RESERVE_RE.match(str(value))
    if not match:
        raise EngineError('scratch reserve %r is not a size: use auto, a percentage of the file system (10%%) or '
                          'bytes with an optional unit (2G, 500M); 0 turns the reserve off' % (value,),
                          hint='e.g. scratch_reserve: 20%  or  --scratch-reserve 5G')
    number, unit = float(match.group(1)), (match.group(2) or '').lower()
    if unit == '%':
        if number > 100:
            raise EngineError('scratch reserve %r: a percentage is at most 100%%' % (value,))
        return ('percent', number)
    return ('bytes', int(number * _RESERVE_UNITS[unit[:1]]))


def describe_reserve(reserve):
    if reserve is None:
        return 'auto: %d%% of the file system, at least %s' % (RESERVE_PERCENT, size_text(RESERVE_MIN_BYTES))
    kind, number = reserve
    return '%g%% of the file system' % number if kind == 'percent' else size_text(number)


def reserve_bytes(reserve, filesystem_size):
    if reserve is None:
        return max(filesystem_size * RESERVE_PERCENT // 100, RESERVE_MIN_BYTES)
    kind, number = reserve
    return int(filesystem_size * number / 100.0) if kind == 'percent' else int(number)


def size_text(value):
    value = float(value or 0)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024.0
    return str(value)


def existing_parent(runner, path):
    while path not in ('', '/') and not path_exists(runner, path, '-d'):
        path = os.path.dirname(path)
    return path or '/'


def filesystem_of(runner, path):
    """{'filesystem', 'mount', 'size', 'free'} of the file system holding path (df -P -B1)."""
    result = runner.run(['df', '-P', '-B1', '--', path], what='df')
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    fields = lines[-1].split() if len(lines) > 1 else []
    if len(fields) < 6 or not (fields[1].isdigit() and fields[3].isdigit()):
        raise EngineError('could not read the free space of %s from df' % path, argv=result.argv,
                          rc=result.rc, stdout=result.stdout, stderr=result.stderr)
    return {'filesystem': fields[0], 'mount': ' '.join(fields[5:]), 'size': int(fields[1]), 'free': int(fields[3]),
            'path': path}


def production_paths(runner, clusters=None):
    """[(what, path)]: the data directory and pg_wal (its symlink followed) of every cluster of this host."""
    if clusters is None:
        try:
            clusters = list_clusters(runner)
        except EngineError:
            clusters = []
    paths = []
    for cluster in clusters:
        data = cluster.get('data_directory')
        if not data:
            continue
        name = '%s/%s' % (cluster['version'], cluster['name'])
        wal = os.path.join(data, 'pg_wal')
        result = runner.run(['readlink', '-f', '--', wal], check=False)
        if result.rc == 0 and (result.stdout or '').strip():
            wal = result.stdout.strip()
        paths.append(('the data directory of %s (%s)' % (name, data), existing_parent(runner, data)))
        paths.append(('the pg_wal of %s (%s)' % (name, wal), existing_parent(runner, wal)))
    return paths


def _same_filesystem(one, other):
    """Same mount point, or the same block device mounted twice (a bind mount); tmpfs and overlay
    mounts are told apart by their mount points."""
    if one['mount'] == other['mount']:
        return True
    return one['filesystem'].startswith('/') and one['filesystem'] == other['filesystem']


def check_space(runner, scratch_path, need, reserve=None, clusters=None):
    """Refuse a scratch restore of about `need` bytes into scratch_path when its file system lacks the
    space, or when it shares a file system with production's data directory or pg_wal and would leave
    less than the reserve free there. `reserve` is what parse_reserve returns. Returns the facts."""
    where = existing_parent(runner, scratch_path)
    scratch_fs = filesystem_of(runner, where)
    facts = {'path': where, 'mount': scratch_fs['mount'], 'free_bytes': scratch_fs['free'],
             'filesystem_bytes': scratch_fs['size'], 'required_bytes': int(need), 'reserve': describe_reserve(reserve),
             'reserve_bytes': 0, 'shared_with': []}
    if scratch_fs['free'] < need:
        raise EngineError('not enough free space in %s for the scratch instance: %s free, about %s needed'
                          % (where, size_text(scratch_fs['free']), size_text(need)),
                          hint='free space, or set scratch_base_dir (--scratch-base-dir) to a larger file system')
    for what, path in production_paths(runner, clusters):
        other = filesystem_of(runner, path)
        if _same_filesystem(other, scratch_fs):
            facts['shared_with'].append(what)
    if facts['shared_with']:
        keep = reserve_bytes(reserve, scratch_fs['size'])
        facts['reserve_bytes'] = keep
        left = scratch_fs['free'] - int(need)
        if left < keep:
            raise EngineError(
                'the scratch restore would leave %s free on the file system of %s (mounted on %s), which also holds '
                '%s: below the reserve of %s (scratch reserve %s) kept so that production can still write WAL and '
                'data (%s free now, about %s needed)'
                % (size_text(max(left, 0)), where, scratch_fs['mount'], ' and '.join(facts['shared_with']),
                   size_text(keep), describe_reserve(reserve), size_text(scratch_fs['free']), size_text(need)),
                hint='set scratch_base_dir (--scratch-base-dir) to a file system production does not write to, or '
                     'free space there; lower the reserve (scratch_reserve, --scratch-reserve; 0 turns it off) '
                     'only if you accept that a scratch restore can fill the disk of the primary')
    return facts


def list_scratch(runner, base_dir=DEFAULT_BASE_DIR):
    """Names of the scratch instances under base_dir (by their marker files)."""
    entries = directory_entries(runner, base_dir) or []
    return sorted(e[:-len(MARKER_SUFFIX)] for e in entries if e.endswith(MARKER_SUFFIX))


class ScratchInstance(object):
    """One scratch PostgreSQL server restored from a stanza (see the module docstring)."""

    def __init__(self, runner, pgbr, version, name='scratch', base_dir=DEFAULT_BASE_DIR, port=None,
                 socket_dir=DEFAULT_SOCKET_DIR, listen_addresses='', settings=None, clock=time.time,
                 sleep=time.sleep, progress=None):
        if not NAME_RE.match(name or ''):
            raise EngineError('scratch instance name %r: use 1-40 lower-case letters, digits, _ and -' % name)
        self.runner = runner
        self.pgbr = pgbr
        self.version = str(version)
        self.name = name
        self.base_dir = _safe_path(base_dir, 'scratch base directory')
        self.socket_dir = _safe_path(socket_dir, 'socket directory')
        if listen_addresses:
            raise EngineError('listen_addresses %r: a scratch instance never listens on TCP; it accepts only the OS '
                              'user postgres on its Unix socket' % (listen_addresses,),
                              hint='connect on the host: %s' % 'runuser -u postgres -- psql -h SOCKET_DIR -p PORT')
        self.listen_addresses = ''
        self.port = int(port) if port else None
        self.settings = dict(settings or {})
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        stem = os.path.join(self.base_dir, name)
        self.data_directory = stem
        self.tablespace_directory = stem + '.tablespaces'
        self.log_file = stem + '.log'
        self.marker_file = stem + MARKER_SUFFIX

    # --- facts -----------------------------------------------------------------------------------

    def exists(self):
        return path_exists(self.runner, self.marker_file) or path_exists(self.runner, self.data_directory)

    def marker(self):
        result = self.runner.run(['cat', '--', self.marker_file], check=False)
        if result.rc != 0:
            return None
        try:
            return json.loads(result.stdout)
        except ValueError:
            return None

    def used_ports(self):
        ports = set()
        try:
            ports |= set(c['port'] for c in list_clusters(self.runner))
        except EngineError:
            pass
        for entry in directory_entries(self.runner, self.socket_dir) or []:
            match = re.match(r'^\.s\.PGSQL\.(\d+)$', entry)
            if match:
                ports.add(int(match.group(1)))
        return ports

    def choose_port(self, preferred=None):
        """The instance's port: the one asked for (refused when taken) or the first free one."""
        used = self.used_ports()
        marker = self.marker() or {}
        if self.port:
            if self.port in used and marker.get('port') != self.port:
                raise EngineError('port %d is already used on this host' % self.port,
                                  hint='choose another scratch port or leave it empty to pick a free one')
            return self.port
        if marker.get('port'):
            self.port = int(marker['port'])
            return self.port
        start = preferred or FIRST_PORT
        for port in range(start, start + PORT_RANGE):
            if port not in used:
                self.port = port
                return port
        raise EngineError('no free port between %d and %d for the scratch instance' % (start, start + PORT_RANGE - 1))

    def describe(self):
        return {'name': self.name, 'port': self.port, 'socket_directory': self.socket_dir,
                'listen_addresses': self.listen_addresses, 'data_directory': self.data_directory,
                'log_file': self.log_file, 'marker_file': self.marker_file, 'version': self.version,
                'psql': 'runuser -u postgres -- psql -h %s -p %s' % (self.socket_dir, self.port),
                'start': self.start_command() if self.port else None, 'stop': self.stop_command(), 'access': 'the OS user postgres only, '
                'over the Unix socket (pg_hba.conf: local all postgres peer); no TCP'}

    def _pg_ctl_text(self):
        return os.path.join(bindir(self.version), 'pg_ctl')

    def start_command(self):
        return 'runuser -u postgres -- %s start -D %s -l %s -o "%s"' % (
            self._pg_ctl_text(), self.data_directory, self.log_file, self.server_options().replace('"', '\\"'))

    def stop_command(self):
        return 'runuser -u postgres -- %s stop -D %s -m fast' % (self._pg_ctl_text(), self.data_directory)

    def how_to(self, state, remove_command=None):
        """One sentence for the output: how to reach the instance, or start, stop and remove it."""
        remove = remove_command or 'pgops-backup pitr scratch-remove %s' % self.name
        if state == 'running':
            return ('scratch instance %s is running on port %s (Unix socket %s only): connect with `%s`; stop it with '
                    '`%s`; remove it with `%s`' % (self.name, self.port, self.socket_dir, self.describe()['psql'],
                                                   self.stop_command(), remove))
        if state == 'stopped':
            return ('scratch instance %s is stopped (kept in %s): start it with `%s`, then connect with `%s`; remove it '
                    'with `%s`' % (self.name, self.data_directory, self.start_command(), self.describe()['psql'],
                                   remove))
        return 'scratch instance %s was removed' % self.name

    def check_space(self, need, reserve=None):
        """check_space() for this instance's base directory (see the module docstring)."""
        return check_space(self.runner, self.base_dir, need, reserve)

    # --- restoring -------------------------------------------------------------------------------

    def restore_command(self):
        """restore_command of the instance: synchronous archive-get (never the source's spool)."""
        parts = [self.pgbr.binary]
        if self.pgbr.config:
            parts.append('--config=%s' % self.pgbr.config)
        parts += ['--stanza=%s' % self.pgbr.stanza, '--pg1-path=%s' % self.data_directory,
                  '--no-archive-async', 'archive-get', '%f', '"%p"']
        return ' '.join(parts)

    def restore_argv(self, target, backup_set=None, repo=None, action=None, extra=()):
        """The pgBackRest restore command line for this instance (nothing is run)."""
        options = ['--pg1-path=%s' % self.data_directory]
        if backup_set:
            options.append('--set=%s' % backup_set)
        if repo:
            options.append('--repo=%d' % int(repo))
        options += target.restore_options(action=action)
        options += ['--archive-mode=off', '--tablespace-map-all=%s' % self.tablespace_directory,
                    '--recovery-option=restore_command=%s' % self.restore_command(),
                    '--log-level-console=info']
        options += list(extra)
        return self.pgbr.argv('restore', *options)

    def create(self, restore_argv, purpose=None, source=None):
        """Make the directories, leave the marker, run the restore and write the configuration."""
        if self.exists():
            raise EngineError('scratch instance %s already exists (%s)' % (self.name, self.data_directory),
                              hint='remove it first (state=absent, or `pgops-backup pitr scratch-remove %s`)' % self.name)
        port = self.choose_port()
        self.runner.run(['mkdir', '-p', '-m', '0700', self.base_dir], what='mkdir')
        marker = {'name': self.name, 'created_at': utc_now(), 'port': port, 'stanza': self.pgbr.stanza,
                  'version': self.version, 'data_directory': self.data_directory, 'purpose': purpose,
                  'source': source}
        self._write(self.marker_file, json.dumps(marker, indent=2, sort_keys=True) + '\n')
        self.runner.run(['mkdir', '-m', '0700', self.data_directory], what='mkdir')
        result = self.runner.run(restore_argv, check=False, stream=True)
        if result.rc != 0:
            raise error_from_result(result, 'pgbackrest restore into scratch instance %s' % self.name)
        self.configure()
        return result

    def configure(self):
        """postgresql.conf, pg_hba.conf and pg_ident.conf of the instance; hot-standby settings at
        least those recorded in the backup's pg_control."""
        control = controldata(self.runner, self.version, self.data_directory)
        settings = {
            'port': str(self.port),
            'listen_addresses': "'%s'" % self.listen_addresses,
            'unix_socket_directories': "'%s'" % self.socket_dir,
            'archive_mode': 'off',
            'archive_command': "''",
            'hot_standby': 'on',
            'logging_collector': 'off',
            'lc_messages': "'C'",
            'log_timezone': "'UTC'",
            'timezone': "'UTC'",
            'log_line_prefix': "'%m [%p] '",
            'cluster_name': "'pgops-scratch-%s'" % self.name,
            'shared_buffers': "'128MB'",
            'max_wal_size': "'1GB'",
            'max_replication_slots': '0',
        }
        for name, value in control['settings'].items():
            settings[name] = value
        for name, value in self.settings.items():
            settings[name] = value
        lines = ['# pgops.backup scratch instance %s: restored from stanza %s; archiving is off.'
                 % (self.name, self.pgbr.stanza)]
        lines += ['%s = %s' % (k, settings[k]) for k in sorted(settings)]
        self._write(os.path.join(self.data_directory, 'postgresql.conf'), '\n'.join(lines) + '\n')
        self._write(os.path.join(self.data_directory, 'pg_hba.conf'), HBA)
        self._write(os.path.join(self.data_directory, 'pg_ident.conf'), '')
        return settings

    def _write(self, path, content):
        self.runner.run(['tee', path], data=content, what='writing %s' % path)
        self.runner.run(['chmod', '0600', path], what='chmod')

    # --- running ---------------------------------------------------------------------------------

    def server_options(self):
        """Settings given on the postgres command line: they win over postgresql.auto.conf."""
        options = ['-c archive_mode=off', '-c port=%d' % self.port,
                   '-c unix_socket_directories=%s' % self.socket_dir, '-c lc_messages=C']
        options.append("-c listen_addresses=''")
        # The instance's own pg_hba.conf (postgres over the socket only), whatever a restored
        # postgresql.auto.conf says about hba_file or ident_file.
        options += ['-c hba_file=%s' % os.path.join(self.data_directory, 'pg_hba.conf'),
                    '-c ident_file=%s' % os.path.join(self.data_directory, 'pg_ident.conf')]
        return ' '.join(options)

    def probe(self):
        return ServerProbe(self.runner, self.version, self.data_directory, self.psql(), self.log_file)

    def psql(self, dbname='postgres'):
        return Psql(self.runner, port=self.port, dbname=dbname, host=self.socket_dir)

    def start(self):
        """Start the server in the background (pg_ctl without waiting); follow it with wait()."""
        if not self.port:
            self.choose_port()
        probe = self.probe()
        probe.mark_log()
        self._probe = probe
        self.runner.run([pg_binary(self.runner, self.version, 'pg_ctl'), 'start', '-D', self.data_directory,
                         '-l', self.log_file, '-W', '-o', self.server_options()], what='pg_ctl start')
        return probe

    def wait(self, goal=GOAL_PAUSED, timeout=3600):
        probe = getattr(self, '_probe', None) or self.probe()
        return wait_for_recovery(probe, goal, timeout, progress=self.progress, clock=self.clock, sleep=self.sleep)

    def running(self):
        return path_exists(self.runner, self.data_directory, '-d') and self.probe().running()

    def promote(self, wait_seconds=300):
        if self.psql().value('SELECT pg_promote(true, %d)' % int(wait_seconds)) != 't':
            raise EngineError('scratch instance %s did not finish promotion within %d s' % (self.name, wait_seconds))

    def stop(self):
        if self.running():
            self.runner.run([pg_binary(self.runner, self.version, 'pg_ctl'), 'stop', '-D', self.data_directory,
                             '-m', 'fast', '-w', '-t', '300'], what='pg_ctl stop')
            return True
        return False

    def remove(self):
        """Stop the instance and delete its directories, log and marker. Returns False when there
        was nothing to remove. Refuses to delete a directory without this engine's marker."""
        if not self.exists():
            return False
        if self.marker() is None:
            raise EngineError('%s exists but has no scratch marker (%s): refusing to delete it'
                              % (self.data_directory, self.marker_file),
                              hint='it was not created by pgops.backup; remove it by hand if it is really unused')
        if not self.port:
            self.choose_port()
        self.stop()
        self.runner.run(['rm', '-rf', '--one-file-system', '--', self.data_directory, self.tablespace_directory,
                         self.log_file], what='rm')
        self.runner.run(['rm', '-f', '--', self.marker_file], what='rm')
        return True
