# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logical backups with pg_dump that can be proven.

For each database: a session exports a snapshot and counts every table's rows in it (dump_session),
pg_dump runs with `--snapshot` while that transaction stays open, `pg_restore --list` must read the
archive back, the files are checksummed (and optionally encrypted with gpg), and a manifest records
all of it. Output goes to a temporary directory that is renamed into place only when everything
succeeded; a failure removes it and leaves earlier dumps untouched. Retention (dump_retention)
never deletes the newest good dump of a database. Layout: see dump_manifest.

Plain Python shared by the pg_dump_job / pg_dump_restore modules and `pgops-backup dump`.
"""

import errno
import fcntl
import os
import re
import shutil
import socket

from . import clock as wall_clock
from . import dump_manifest as layout
from . import dump_retention as retention
from . import retention_policy as calendar_policy
from .dump_crypto import GPG_SUFFIX, Gpg, remove_stale_work
from .dump_session import session_factory
from .postgres import FIELD_SEP, RECORD_SEP, conninfo_dbname, parse_rows  # noqa: F401 (conninfo_dbname: re-exported)
from .process import EngineError
from .records import write_json_atomic

FORMATS = ('custom', 'directory', 'plain')
COMPRESSION_METHODS = ('auto', 'none', 'gzip', 'lz4', 'zstd')
# Accepted levels per method, and the default level this job uses (fast: gzip 9 is never a default).
LEVELS = {'gzip': (1, 9), 'lz4': (1, 12), 'zstd': (1, 22)}
DEFAULT_LEVELS = {'gzip': 1, 'lz4': 1, 'zstd': 3}
# pg_dump learnt `--compress=METHOD[:DETAIL]` with lz4 and zstd in PostgreSQL 16.
COMPRESS_METHODS_SINCE = 16
# Options the job sets itself: they cannot be given as extra options.
MANAGED_OPTIONS = frozenset([
    'file', 'format', 'compress', 'jobs', 'snapshot', 'dbname', 'host', 'port', 'username',
    'password', 'no-password', 'exclude-table-data', 'version', 'help'])
FORBIDDEN_OPTIONS = {
    'serializable-deferrable': 'it cannot be combined with the exported snapshot the manifest counts are taken in',
    'verbose': 'progress is reported by the job itself',
}
GLOBALS_COMPLETE = '-- PostgreSQL database cluster dump complete'
PLAIN_COMPLETE = '-- PostgreSQL database dump complete'
GLOBALS_NAME = 'globals.sql'
DEFAULT_MAX_JOBS = 8

_VERSION_RE = re.compile(r'\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?')
_HELP_OPTION_RE = re.compile(r'^\s+(?:-\w, )?--([a-z][a-z0-9-]*)(\[?=)?', re.MULTILINE)
_OPTION_NAME_RE = re.compile(r'^[a-z][a-z0-9-]*$')
_ERROR_RE = re.compile(r'(?:^|: )(?:error|fatal|panic):', re.IGNORECASE)
_TOC_RE = re.compile(r'^(\d+); (\d+) (\d+) (.*)$')
_PLAIN_ENTRY_RE = re.compile(r'^-- (Data for )?Name: (.*); Type: (.*?); Schema: (.*?); Owner: (.*)$')
PG_CLASS_OID = 1259


# --- versions, compression and options ------------------------------------------------------------

def parse_client_version(text):
    """`pg_dump --version` -> (major, minor): 'pg_dump (PostgreSQL) 17.12 (Debian ...)' -> (17, 12)."""
    match = _VERSION_RE.search(text or '')
    if not match:
        raise EngineError('could not read the version from %r' % (text or '').strip())
    return int(match.group(1)), int(match.group(2) or 0)


def major_of(version_num):
    """server_version_num -> major: 170012 -> 17, 90624 -> 9.6 (as 9)."""
    version_num = int(version_num)
    return version_num // 10000


def resolve_compression(method, level, client_major, fmt):
    """The pg_dump `--compress` argument for a request, gated on pg_dump's version.
    Returns {'method', 'level', 'argument'} (argument None: pg_dump's default is not used)."""
    method = method or 'auto'
    if method not in COMPRESSION_METHODS:
        raise EngineError('compression must be one of %s, not %r' % (', '.join(COMPRESSION_METHODS), method))
    modern = client_major >= COMPRESS_METHODS_SINCE
    if fmt == 'plain':
        if method not in ('auto', 'none'):
            raise EngineError('the plain format is written uncompressed by this job (compression %r asked)' % method,
                              hint='use format custom or directory for compressed dumps')
        return {'method': 'none', 'level': None, 'argument': None}
    if method == 'auto':
        method = 'zstd' if modern else 'gzip'
    if method == 'none':
        return {'method': 'none', 'level': None, 'argument': '--compress=none' if modern else '--compress=0'}
    if method in ('lz4', 'zstd') and not modern:
        raise EngineError('%s compression needs pg_dump %d or later; this host has pg_dump %d' % (
            method, COMPRESS_METHODS_SINCE, client_major),
            hint='use compression gzip (or auto), or install a newer postgresql-client and set bin_dir')
    if level is None:
        level = DEFAULT_LEVELS[method]
    low, high = LEVELS[method]
    if not isinstance(level, int) or isinstance(level, bool) or not low <= level <= high:
        raise EngineError('%s compression level must be %d..%d, not %r' % (method, low, high, level))
    argument = '--compress=%s:%d' % (method, level) if modern else '--compress=%d' % level
    return {'method': method, 'level': level, 'argument': argument}


def parse_help_options(help_text):
    """{option name: takes a value} from `pg_dump --help`."""
    return dict((name, bool(value)) for name, value in _HELP_OPTION_RE.findall(help_text or ''))


def validate_extra_options(options, supported=None):
    """Extra pg_dump options: long form only (--name or --name=value), not one the job manages,
    and (when `supported` from parse_help_options is given) known to this pg_dump with a value
    exactly when the option takes one. Returns the list; raises EngineError naming every problem."""
    problems = []
    for option in options or []:
        if not isinstance(option, str) or not option.startswith('--') or len(option) < 3:
            problems.append('%r: give options in long form, --name or --name=value' % (option,))
            continue
        name, has_value = option[2:].split('=', 1)[0], '=' in option
        if not _OPTION_NAME_RE.match(name):
            problems.append('%r: not an option name' % option)
        elif name in MANAGED_OPTIONS:
            problems.append('--%s is set by the job itself; use the matching job option' % name)
        elif name in FORBIDDEN_OPTIONS:
            problems.append('--%s cannot be used: %s' % (name, FORBIDDEN_OPTIONS[name]))
        elif supported is not None and name not in supported:
            problems.append('--%s is not an option of this pg_dump' % name)
        elif supported is not None and supported[name] and not has_value:
            problems.append('--%s takes a value: write --%s=VALUE as one list item' % (name, name))
        elif supported is not None and not supported[name] and has_value:
            problems.append('--%s takes no value' % name)
    if problems:
        raise EngineError('invalid extra pg_dump options: %s' % '; '.join(problems))
    return list(options or [])


def quote_literal(value):
    return "E'%s'" % value.replace('\\', '\\\\').replace("'", "''")


def os_failure(exc, what):
    """An OSError (permission, disk full, ...) as an EngineError a person can act on."""
    if isinstance(exc, EngineError):
        return exc
    detail = exc.strerror or str(exc)
    where = getattr(exc, 'filename', None)
    hint = None
    if getattr(exc, 'errno', None) == errno.ENOSPC:
        hint = 'the destination is full: free space or lower the retention; earlier dumps were kept'
    elif getattr(exc, 'errno', None) in (errno.EACCES, errno.EPERM):
        hint = 'the directory must belong to the job user (postgres), mode 0700; the pg_dump role creates it'
    return EngineError('%s: %s%s' % (what, detail, ' (%s)' % where if where else ''), hint=hint)


def default_jobs():
    return max(1, min(os.cpu_count() or 1, DEFAULT_MAX_JOBS))


# --- checking what the tools did -----------------------------------------------------------------

def error_lines(text, ignore=None):
    """Lines of tool output that report an error (pg_dump can exit 0 after some of them)."""
    found = []
    for line in (text or '').splitlines():
        if _ERROR_RE.search(line) and not (ignore and ignore(line)):
            found.append(line.strip())
    return found


def warning_lines(text):
    return [line.strip() for line in (text or '').splitlines() if 'warning:' in line.lower()]


def check_result(result, what, ignore=None):
    """Raise when the command failed by rc or by its messages; return its warnings."""
    if result.rc != 0:
        raise EngineError('%s failed' % what, argv=result.argv, rc=result.rc, stdout=result.stdout,
                          stderr=result.stderr, hint=_hint_for(result.stderr))
    errors = error_lines(result.stderr, ignore)
    if errors:
        raise EngineError('%s exited 0 but reported errors: %s' % (what, ' | '.join(errors[:5])),
                          argv=result.argv, rc=result.rc, stdout=result.stdout, stderr=result.stderr,
                          hint=_hint_for(result.stderr))
    return warning_lines(result.stderr)


def _hint_for(stderr):
    text = (stderr or '').lower()
    if 'no space left' in text:
        return 'the destination is full: free space or lower the retention; earlier dumps were kept'
    if 'server version mismatch' in text:
        return 'pg_dump is older than the server: install the matching postgresql-client or set bin_dir'
    if 'peer authentication failed' in text or 'password authentication failed' in text:
        return 'connect as the cluster owner (run_as) or give a 0600 passfile'
    if 'invalid snapshot identifier' in text:
        return 'the snapshot session ended before pg_dump started; read the PostgreSQL log'
    return None


def parse_toc(text):
    """`pg_restore --list` -> {'tables': oids with a definition, 'table_data': oids with data,
    'large_objects': bool, 'entries': n}. TOC lines are `dumpId; tableoid oid DESC ...`: a TABLE
    entry carries (pg_class, relation oid), a TABLE DATA entry (0, relation oid); matching by oid
    is exact whatever the names contain."""
    tables, data = set(), set()
    large_objects = False
    entries = 0
    for line in (text or '').splitlines():
        match = _TOC_RE.match(line)
        if not match:
            continue
        entries += 1
        tableoid, oid, rest = int(match.group(2)), int(match.group(3)), match.group(4)
        if rest.startswith('TABLE DATA ') or rest.startswith('MATERIALIZED VIEW DATA '):
            data.add(oid)
        elif tableoid == PG_CLASS_OID and (rest.startswith('TABLE ') or rest.startswith('MATERIALIZED VIEW ')):
            tables.add(oid)
        elif rest.startswith('BLOBS '):
            large_objects = True
    if not entries and '; Archive created at' not in (text or ''):
        # An empty database has no entries, but every readable archive has this header.
        raise EngineError('pg_restore --list shows no archive header: the archive is unreadable')
    return {'tables': tables, 'table_data': data, 'large_objects': large_objects, 'entries': entries}


def scan_plain(path, tables):
    """A plain dump's own TOC: its `-- Name: ...; Type: TABLE` comments, matched to the counted
    tables by (schema, name, owner). Raises when the completion trailer is missing."""
    by_key = dict(((t['schema'], t['name'], t['owner']), t['oid']) for t in tables)
    result = {'tables': set(), 'table_data': set(), 'large_objects': False, 'entries': 0}
    complete = False
    with open(path, 'rb') as handle:
        for raw in handle:
            if not raw.startswith(b'--'):
                continue
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            if line.startswith(PLAIN_COMPLETE):
                complete = True
                continue
            match = _PLAIN_ENTRY_RE.match(line)
            if not match:
                continue
            result['entries'] += 1
            is_data, name, kind, schema, owner = match.groups()
            oid = by_key.get((schema, name, owner))
            if kind in ('TABLE DATA', 'MATERIALIZED VIEW DATA') and oid is not None:
                result['table_data'].add(oid)
            elif kind in ('TABLE', 'MATERIALIZED VIEW') and not is_data and oid is not None:
                result['tables'].add(oid)
            elif kind == 'BLOBS' or kind == 'LARGE OBJECTS':
                result['large_objects'] = True
    if not complete:
        raise EngineError('the plain dump %s has no completion trailer: it is truncated' % path)
    return result


def has_trailer(path, marker, tail=8192):
    """True when the end of a SQL file holds pg_dump(all)'s completion marker."""
    size = os.path.getsize(path)
    with open(path, 'rb') as handle:
        handle.seek(max(0, size - tail))
        return marker.encode() in handle.read()


# --- connecting -----------------------------------------------------------------------------------

class Connection(object):
    """How the tools reach PostgreSQL: local socket by default, passwords only by a passfile."""

    def __init__(self, port=None, host=None, user=None, passfile=None):
        self.port = port
        self.host = host
        self.user = user
        self.passfile = passfile

    def options(self):
        out = []
        if self.host:
            out.append('--host=%s' % self.host)
        if self.port:
            out.append('--port=%d' % int(self.port))
        if self.user:
            out.append('--username=%s' % self.user)
        out.append('--no-password')  # never prompt: a timer has nobody to answer
        return out

    def env(self):
        return {'PGPASSFILE': self.passfile} if self.passfile else {}

    def libpq_kwargs(self, dbname):
        return {'dbname': dbname, 'host': self.host, 'port': self.port, 'user': self.user}


def connection_argument_spec():
    """Options documented by the pgops.backup.pg_dump doc fragment."""
    return dict(
        port=dict(type='int'),
        host=dict(type='str'),
        user=dict(type='str'),
        passfile=dict(type='path', no_log=False),
        run_as=dict(type='str', default='postgres'),
        bin_dir=dict(type='path'),
    )


class Client(object):
    """The PostgreSQL client programs of one host, run through a process.Runner."""

    def __init__(self, runner, connection=None, bin_dir=None):
        self.runner = runner
        self.connection = connection or Connection()
        self.bin_dir = bin_dir
        self._versions = {}

    def binary(self, name):
        if self.bin_dir:
            path = os.path.join(self.bin_dir, name)
            if not os.access(path, os.X_OK):
                raise EngineError('%s not found in bin_dir %s' % (name, self.bin_dir))
            return path
        return self.runner.binary(name, 'postgresql-client')

    def run(self, argv, **kwargs):
        return self.runner.run(argv, env=self.connection.env(), **kwargs)

    def version(self, name='pg_dump'):
        if name not in self._versions:
            self._versions[name] = self.run([self.binary(name), '--version'], what='%s --version' % name).stdout.strip()
        return self._versions[name]

    def major(self, name='pg_dump'):
        return parse_client_version(self.version(name))[0]

    def psql_argv(self, sql, dbname='postgres'):
        return ([self.binary('psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', FIELD_SEP,
                 '-R', RECORD_SEP] + self.connection.options() + ['-d', conninfo_dbname(dbname), '-c', sql])

    def rows(self, sql, dbname='postgres'):
        return parse_rows(self.run(self.psql_argv(sql, dbname), what='psql').stdout)

    def server_version_num(self):
        return int(self.rows('SHOW server_version_num')[0][0])

    def connectable_databases(self):
        return [r[0] for r in self.rows(
            'SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname')]

    def database_exists(self, name):
        return bool(self.rows('SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s' % quote_literal(name)))


def dump_argv(pg_dump, connection, dbname, path, fmt, compression, snapshot, jobs=None,
              exclude_table_data=None, extra_options=None):
    argv = [pg_dump, '--format=%s' % fmt, '--file=%s' % path]
    if snapshot:
        argv.append('--snapshot=%s' % snapshot)
    if compression and compression.get('argument'):
        argv.append(compression['argument'])
    if fmt == 'directory' and jobs and int(jobs) > 1:
        argv.append('--jobs=%d' % int(jobs))
    for pattern in exclude_table_data or []:
        argv.append('--exclude-table-data=%s' % pattern)
    argv.extend(extra_options or [])
    argv.extend(connection.options())
    argv.append('--dbname=%s' % conninfo_dbname(dbname))
    return argv


def globals_argv(pg_dumpall, connection, path):
    return [pg_dumpall, '--globals-only', '--file=%s' % path] + connection.options()


def restore_list_argv(pg_restore, path):
    return [pg_restore, '--list', path]


# --- files and ownership --------------------------------------------------------------------------

class Owner(object):
    """Gives what the engine creates to the job user when the engine runs as root (the module):
    pg_dump and gpg run as that user and must write into the directories."""

    def __init__(self, user=None):
        self.uid = self.gid = None
        if user and os.geteuid() == 0:
            import pwd
            entry = pwd.getpwnam(user)
            if entry.pw_uid != 0:
                self.uid, self.gid = entry.pw_uid, entry.pw_gid

    def __call__(self, path):
        if self.uid is not None:
            os.lchown(path, self.uid, self.gid)

    def tree(self, root):
        self(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                self(os.path.join(dirpath, name))


def make_private_dir(path, owner):
    """The directory itself 0700 for the job user; missing parents 0755, so that user can reach it."""
    if os.path.isdir(path):
        return path
    missing, parent = [], os.path.dirname(path)
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        os.mkdir(directory)
        os.chmod(directory, 0o755)
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)
    owner(path)
    return path


def make_private(root):
    """Files 0600, directories 0700: dumps hold every row of the database."""
    if os.path.isfile(root):
        os.chmod(root, 0o600)
        return
    os.chmod(root, 0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o700)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o600)


def fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.unlink(path)
        except OSError:
            pass


class DestinationLock(object):
    """One job per destination: dumps and pruning hold it exclusively."""

    def __init__(self, destination, owner):
        self.path = os.path.join(destination, layout.LOCK_FILE)
        self.owner = owner
        self.handle = None

    def __enter__(self):
        fresh = not os.path.exists(self.path)
        try:
            self.handle = open(self.path, 'a+')
        except (IOError, OSError) as exc:
            raise os_failure(exc, 'cannot open the lock file %s' % self.path)
        if fresh:
            os.chmod(self.path, 0o600)
            self.owner(self.path)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            self.handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise EngineError('another dump job is writing to %s' % os.path.dirname(self.path),
                                  code='locked', hint='wait for it to finish (systemctl list-units "pg-dump-*")')
            raise
        return self

    def __exit__(self, *exc):
        self.handle.close()
        return False


def unit_in_use(path):
    """True when a restore holds the dump (a shared lock on its manifest): pruning skips it."""
    try:
        handle = open(os.path.join(path, layout.MANIFEST))
    except (IOError, OSError):
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except (IOError, OSError):
        return True
    finally:
        handle.close()


# --- the job --------------------------------------------------------------------------------------

class DumpJob(object):
    """Dump databases (+ globals) into a destination, prove each dump, apply retention."""

    def __init__(self, runner, destination, databases=None, fmt='custom', compression='auto',
                 compression_level=None, jobs=0, exclude_table_data=None, extra_options=None,
                 include_globals=True, passphrase=None, retention_count=0, retention_max_age=None,
                 connection=None, bin_dir=None, job=None, sessions=None, owner=None, clock=None,
                 say=None, host=None, retention_policy=None):
        if fmt not in FORMATS:
            raise EngineError('format must be one of %s, not %r' % (', '.join(FORMATS), fmt))
        if not destination or not os.path.isabs(destination):
            raise EngineError('the destination must be an absolute path, not %r' % (destination,))
        self.runner = runner
        self.client = Client(runner, connection, bin_dir)
        self.connection = self.client.connection
        self.destination = os.path.normpath(destination)
        self.databases = list(databases or [])
        self.fmt = fmt
        self.compression_request = (compression or 'auto', compression_level)
        self.jobs = jobs
        self.exclude_table_data = list(exclude_table_data or [])
        self.extra_options = list(extra_options or [])
        self.include_globals = include_globals
        self.passphrase = passphrase
        self.retention_count = int(retention_count or 0)
        self.max_age = retention.parse_age(retention_max_age)
        self.retention_max_age = retention_max_age
        # A calendar policy (docs/retention.md) replaces the count and age; refused here, before any dump.
        self.retention_policy = retention_policy or {}
        self.rules = calendar_policy.parse_policy(self.retention_policy)
        self.job = job
        self.owner = owner if callable(owner) else Owner(owner if owner is not None else runner.run_as)
        self.sessions = sessions or session_factory(
            self.connection, os_user=runner.run_as if os.geteuid() == 0 else None)
        self.clock = clock or wall_clock.now
        self.say = say or (lambda text: None)
        self.host = host or socket.getfqdn()
        self.errors = []
        self._context = None

    # preparation (shared by check mode and the real run) ------------------------------------------
    def prepare(self):
        if self._context is not None:
            return self._context
        if self.retention_count < 0:
            raise EngineError('retention_count must be 0 (no limit) or more')
        pg_dump_major = self.client.major('pg_dump')
        server_num = self.client.server_version_num()
        if pg_dump_major < major_of(server_num):
            raise EngineError('pg_dump %d cannot dump a PostgreSQL %d server' % (pg_dump_major, major_of(server_num)),
                              hint='install postgresql-client-%d or set bin_dir' % major_of(server_num))
        compression = resolve_compression(self.compression_request[0], self.compression_request[1],
                                          pg_dump_major, self.fmt)
        supported = parse_help_options(self.client.run([self.client.binary('pg_dump'), '--help'],
                                                       what='pg_dump --help').stdout)
        validate_extra_options(self.extra_options, supported)
        available = self.client.connectable_databases()
        if self.databases:
            missing = [d for d in self.databases if d not in available]
            if missing:
                raise EngineError('database(s) not found or not connectable: %s' % ', '.join(missing),
                                  hint='connectable databases: %s' % ', '.join(available))
            databases = list(self.databases)
        else:
            databases = available
        jobs = None
        if self.fmt == 'directory':
            jobs = int(self.jobs) if self.jobs else default_jobs()
        if self.passphrase is not None and not self.passphrase:
            raise EngineError('encryption asked without a passphrase')
        self._context = {
            'pg_dump_version': self.client.version('pg_dump'), 'pg_dump_major': pg_dump_major,
            'server_version_num': server_num, 'compression': compression, 'databases': databases,
            'jobs': jobs,
        }
        return self._context

    def options_record(self, ctx):
        return {'format': self.fmt, 'compression': ctx['compression']['method'],
                'compression_level': ctx['compression']['level'], 'jobs': ctx['jobs'],
                'exclude_table_data': self.exclude_table_data, 'extra_options': self.extra_options,
                'globals': self.include_globals, 'encrypted': self.passphrase is not None,
                'retention_count': self.retention_count, 'retention_max_age': self.retention_max_age}

    def partial_reasons(self):
        """Why this job's dumps are partial ([] when complete): see dump_manifest.partial_reasons."""
        return layout.partial_reasons({'exclude_table_data': self.exclude_table_data,
                                       'extra_options': self.extra_options})

    def db_dir(self, database):
        return os.path.join(self.destination, layout.encode_name(database))

    def plan(self):
        """Check mode: what would be dumped and pruned. Reads, never writes."""
        ctx = self.prepare()
        now = self.clock()
        would_dump, would_prune = [], []
        pg_dump = self.client.binary('pg_dump')
        for database in ctx['databases']:
            target = os.path.join(self.db_dir(database), layout.stamp(now))
            argv = dump_argv(pg_dump, self.connection, database,
                             os.path.join(target, layout.dump_basename(database, self.fmt)), self.fmt,
                             ctx['compression'], '<snapshot>', ctx['jobs'], self.exclude_table_data,
                             self.extra_options)
            would_dump.append({'database': database, 'path': target, 'command': argv})
            units = layout.list_units(self.db_dir(database))
            virtual = {'name': layout.stamp(now), 'finished_epoch': now, 'path': target,
                       'partial': bool(self.partial_reasons())}
            keep, prune = retention.select(units + [virtual], now, self.retention_count, self.max_age, rules=self.rules)
            would_prune.extend(u['path'] for u in prune)
        return dict(self.summary_base(ctx), would_dump=would_dump, would_prune=would_prune,
                    partial=bool(self.partial_reasons()), partial_reasons=self.partial_reasons(),
                    globals_command=globals_argv(self.client.binary('pg_dumpall'), self.connection,
                                                 os.path.join(self.destination, GLOBALS_NAME))
                    if self.include_globals else None)

    def summary_base(self, ctx):
        return {'destination': self.destination, 'job': self.job, 'format': self.fmt,
                'compression': ctx['compression']['method'], 'compression_level': ctx['compression']['level'],
                'pg_dump_version': ctx['pg_dump_version'], 'server_version_num': ctx['server_version_num'],
                'databases': ctx['databases'], 'encrypted': self.passphrase is not None}

    # the run ---------------------------------------------------------------------------------------
    def run(self):
        started = self.clock()
        ctx = self.prepare()
        old_umask = os.umask(0o077)
        dumps, pruned, failed = [], [], []
        try:
            try:
                make_private_dir(self.destination, self.owner)
            except OSError as exc:
                raise os_failure(exc, 'cannot create the destination %s' % self.destination)
            with DestinationLock(self.destination, self.owner):
                self.remove_stale()
                globals_tmp = self.dump_globals(started) if self.include_globals else None
                try:
                    for database in ctx['databases']:
                        self.say('dumping database %s' % database)
                        try:
                            dump = self.dump_database(database, ctx, globals_tmp, started)
                        except (EngineError, OSError) as exc:
                            exc = os_failure(exc, 'dump of database %r' % database)
                            self.errors.append(exc)
                            failed.append({'database': database, 'error': exc.full_message(), 'rc': exc.rc})
                            self.say('FAILED: database %s: %s' % (database, exc.full_message()))
                            continue
                        dumps.append(dump)
                        self.say('database %s: %d tables, %d rows, %d bytes in %.1f s -> %s' % (
                            database, dump['table_count'], dump['rows_total'], dump['size_bytes'],
                            dump['duration_seconds'], dump['path']))
                        pruned.extend(self.prune_database(database))
                finally:
                    if globals_tmp:
                        remove_path(globals_tmp)
        finally:
            os.umask(old_umask)
        for path in pruned:
            self.say('pruned %s' % path)
        return dict(self.summary_base(ctx), dumps=dumps, failed=failed, pruned=pruned,
                    size_bytes=sum(d['size_bytes'] for d in dumps),
                    duration_seconds=round(self.clock() - started, 3))

    def remove_stale(self):
        """Work left by a killed run (the lock is ours, so nobody is writing it any more), and the
        decrypted files of killed restores of these dumps (their process is gone)."""
        for root in [self.destination] + list(layout.database_dirs(self.destination).values()):
            for name in os.listdir(root):
                if name.startswith(layout.PARTIAL_PREFIX):
                    self.say('removing the leftover of an interrupted run: %s' % os.path.join(root, name))
                    remove_path(os.path.join(root, name))
            remove_stale_work(root, say=self.say)

    def dump_globals(self, started):
        path = os.path.join(self.destination, '%sglobals-%s-%d.sql' % (
            layout.PARTIAL_PREFIX, layout.stamp(started), os.getpid()))
        argv = globals_argv(self.client.binary('pg_dumpall'), self.connection, path)
        try:
            result = self.client.run(argv, check=False)
            check_result(result, 'pg_dumpall --globals-only')
            # pg_dumpall exits 0 with an empty file when the disk is full: check the trailer.
            if not has_trailer(path, GLOBALS_COMPLETE):
                raise EngineError('pg_dumpall --globals-only wrote an incomplete file (disk full?)',
                                  argv=result.argv, rc=result.rc, stderr=result.stderr,
                                  hint='check the free space of %s' % self.destination)
        except OSError as exc:
            remove_path(path)
            raise os_failure(exc, 'pg_dumpall --globals-only')
        except BaseException:
            remove_path(path)
            raise
        return path

    def dump_database(self, database, ctx, globals_tmp, started):
        db_dir = make_private_dir(self.db_dir(database), self.owner)
        tmp = os.path.join(db_dir, '%s%s-%d' % (layout.PARTIAL_PREFIX, layout.stamp(started), os.getpid()))
        os.mkdir(tmp, 0o700)
        self.owner(tmp)
        session = self.sessions(database, export_snapshot=True)
        begun = self.clock()
        try:
            info = session.open()
            dump_name = layout.dump_basename(database, self.fmt)
            out = os.path.join(tmp, dump_name)
            argv = dump_argv(self.client.binary('pg_dump'), self.connection, database, out, self.fmt,
                             ctx['compression'], info['snapshot'], ctx['jobs'], self.exclude_table_data,
                             self.extra_options)
            t0 = self.clock()
            result = self.client.run(argv, check=False)
            dump_seconds = round(self.clock() - t0, 3)
            warnings = check_result(result, 'pg_dump of database %r' % database)
            counts = session.counts()
            session.close()
            toc = self.validate(out, counts)
            files = [(rel, 'dump') for rel in layout.walk_files(out)]
            if globals_tmp:
                link_or_copy(globals_tmp, os.path.join(tmp, GLOBALS_NAME), self.owner)
                files.append((GLOBALS_NAME, 'globals'))
            if self.passphrase is not None:
                files = self.encrypt(tmp, files)
            make_private(tmp)
            described = []
            for role in ('dump', 'globals'):
                described.extend(layout.describe_files(tmp, [rel for rel, r in files if r == role], role))
            finished = self.clock()
            options = self.options_record(ctx)
            options['dump_path'] = dump_name + (GPG_SUFFIX if self.passphrase is not None and self.fmt != 'directory' else '')
            manifest = layout.build_manifest(
                database, info, counts, toc, described, options, {'pg_dump': ctx['pg_dump_version']},
                {'started': begun, 'finished': finished, 'dump_seconds': dump_seconds}, job=self.job,
                host=self.host, globals_file=(GLOBALS_NAME + (GPG_SUFFIX if self.passphrase is not None else ''))
                if globals_tmp else None, warnings=warnings, command=argv)
            write_json_atomic(os.path.join(tmp, layout.MANIFEST), manifest, mode=0o600)
            self.owner(os.path.join(tmp, layout.MANIFEST))
            final = os.path.join(db_dir, layout.unit_name(db_dir, started))
            os.rename(tmp, final)
            fsync_dir(db_dir)
        except BaseException:
            session.abort()
            remove_path(tmp)
            raise
        return {'database': database, 'path': final, 'manifest': os.path.join(final, layout.MANIFEST),
                'dump_path': os.path.join(final, options['dump_path']),
                'files': described, 'size_bytes': manifest['size_bytes'], 'rows_total': manifest['rows_total'],
                'table_count': manifest['table_count'], 'large_objects': manifest['large_objects']['count'],
                'duration_seconds': manifest['duration_seconds'], 'dump_seconds': dump_seconds,
                'count_seconds': manifest['count_seconds'], 'encrypted': manifest['encrypted'],
                'warnings': warnings, 'partial': manifest['partial'], 'partial_reasons': manifest['partial_reasons']}

    def validate(self, out, counts):
        """The dump counts as good only when it reads back: pg_restore --list (custom, directory)
        or the plain file's completion trailer."""
        if self.fmt == 'plain':
            return scan_plain(out, counts['tables'])
        result = self.client.run(restore_list_argv(self.client.binary('pg_restore'), out), check=False)
        check_result(result, 'pg_restore --list of the new dump')
        return parse_toc(result.stdout)

    def encrypt(self, tmp, files):
        encrypted = []
        with Gpg(self.runner, self.passphrase, chown=self.owner) as gpg:
            for rel, role in files:
                source = os.path.join(tmp, rel)
                gpg.encrypt(source)
                os.unlink(source)
                encrypted.append((rel + GPG_SUFFIX, role))
        return encrypted

    # retention -------------------------------------------------------------------------------------
    def prune_database(self, database, dry_run=False):
        units = layout.list_units(self.db_dir(database))
        keep, prune = retention.select(units, self.clock(), self.retention_count, self.max_age, rules=self.rules)
        removed = []
        for unit in prune:
            if dry_run:
                removed.append(unit['path'])
            elif unit_in_use(unit['path']):
                self.say('keeping %s for now: a restore is reading it' % unit['path'])
            else:
                remove_path(unit['path'])
                removed.append(unit['path'])
        return removed

    def prune(self, dry_run=False):
        """Retention only, for the job's databases (every database directory when none are named)."""
        names = self.databases or sorted(layout.database_dirs(self.destination))
        if dry_run:
            return [p for name in names for p in self.prune_database(name, dry_run=True)]
        with DestinationLock(self.destination, self.owner):
            removed = [p for name in names for p in self.prune_database(name)]
        for path in removed:
            self.say('pruned %s' % path)
        return removed


def link_or_copy(source, target, owner):
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        owner(target)
