# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore a logical dump into a new database and prove it against its manifest.

Order: take the target cluster's lock (cluster_lock.ClusterLock, shared with in-place PITR,
standby rebuild and restore drills), verify every file's sha256 against the manifest, refuse what
must not happen (an existing database without drop_existing; with it, the database the dump came
from on the same cluster, or a database with sessions, unless forced), decrypt (gpg) into a
private work directory, restore the globals only when asked (filtered: roles that exist are left
exactly as they are, password included; only missing roles are created), create the target
database with the source's encoding and locale from template0, run pg_restore with --jobs (or psql
for a plain dump), then count every table of the restored database and compare with the counts
taken in the dump's snapshot. Any difference fails. The restore drill reuses this.
"""

import fcntl
import os
import pwd
import re
import shutil
import socket
import tempfile

from . import clock as wall_clock
from . import cluster_lock as cluster_lock_mod
from . import dump_manifest as layout
from .cluster_lock import ClusterLock
from .dump_crypto import GPG_SUFFIX, Gpg, decrypt_work_dir
from .dump_session import quote_ident, session_factory
from .pg_dump import (Client, Owner, check_result, conninfo_dbname, default_jobs, make_private_dir,
                      os_failure, quote_literal, remove_path)
from .postgres import list_clusters
from .process import EngineError

_IDENT = r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_ROLE_STATEMENTS = (
    ('create', re.compile(r'^CREATE\s+ROLE\s+' + _IDENT, re.IGNORECASE)),
    ('alter', re.compile(r'^ALTER\s+(?:ROLE|USER)\s+' + _IDENT, re.IGNORECASE)),
    ('comment', re.compile(r'^COMMENT\s+ON\s+ROLE\s+' + _IDENT, re.IGNORECASE)),
    ('label', re.compile(r'^SECURITY\s+LABEL\s+(?:FOR\s+\S+\s+)?ON\s+ROLE\s+' + _IDENT, re.IGNORECASE)),
    ('grant', re.compile(r'^GRANT\s+' + _IDENT + r'(?:\s*,\s*' + _IDENT.replace('(', '(?:', 1) + r')*\s+TO\s+'
                         + _IDENT, re.IGNORECASE)),
)
_LOCAL_HOSTS = ('localhost', '127.0.0.1', '::1')
_CLUSTER_NAME_RE = re.compile(r'^\d+(?:\.\d+)?/[A-Za-z0-9_.-]+$')


def _addresses(host):
    """The IP addresses a host name resolves to (none when it does not resolve)."""
    try:
        return sorted(set(info[4][0] for info in socket.getaddrinfo(host, None)))
    except (socket.gaierror, UnicodeError):
        return []


def is_this_host(host):
    """Whether a connection host names this machine: a socket directory, a loopback name, this host's
    own name, or an address this host can bind (one of its own interfaces). A cluster reached by this
    host's name or IP must share the cluster lock with a PITR of the same cluster."""
    if not host or host.startswith('/') or host in _LOCAL_HOSTS:
        return True
    if host.lower() in (socket.gethostname().lower(), socket.getfqdn().lower()):
        return True
    for address in _addresses(host):
        probe = socket.socket(socket.AF_INET6 if ':' in address else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((address.split('%')[0], 0))
            return True
        except (OSError, socket.error):
            continue
        finally:
            probe.close()
    return False


def _unquote(ident):
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident


def split_statements(text):
    """SQL text (pg_dumpall --globals-only output) as chunks: one per statement (across lines when a
    literal spans lines), with blank lines, comments and psql meta-commands as chunks of their own."""
    chunks, buf, quote = [], [], None
    for line in text.splitlines(True):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith('--') or stripped.startswith('\\')):
            chunks.append(line)
            continue
        buf.append(line)
        index = 0
        while index < len(line):
            char = line[index]
            if quote:
                if char == quote:
                    quote = None
            elif char in ("'", '"'):
                quote = char
            elif line.startswith('--', index):
                break
            index += 1
        if not quote and stripped.endswith(';'):
            chunks.append(''.join(buf))
            buf = []
    if buf:
        chunks.append(''.join(buf))
    return chunks


def filter_globals(text, existing_roles):
    """Globals SQL for a cluster that already has `existing_roles`: every statement about an existing
    role (CREATE ROLE, ALTER ROLE: attributes, PASSWORD and settings, COMMENT, SECURITY LABEL, a GRANT
    that makes it a member) is left out, so an existing role keeps its password, attributes and
    memberships; missing roles are created with theirs. Everything else (tablespaces) is kept.
    Returns (sql, {'created': [...], 'left_unchanged': [...], 'statements_left_out': n})."""
    existing = set(existing_roles)
    out, created, unchanged, left_out = [], [], set(), 0
    for chunk in split_statements(text):
        statement = chunk.lstrip()
        role = kind = None
        for name, pattern in _ROLE_STATEMENTS:
            match = pattern.match(statement)
            if match:
                kind, role = name, _unquote(match.groups()[-1])
                break
        if role is not None and role in existing:
            unchanged.add(role)
            left_out += 1
            continue
        if kind == 'create':
            created.append(role)
        out.append(chunk)
    return ''.join(out), {'created': created, 'left_unchanged': sorted(unchanged), 'statements_left_out': left_out}


def lock_owner(user):
    """uid and gid of the OS user the jobs run as, so that root and postgres share a cluster lock."""
    try:
        entry = pwd.getpwnam(user or 'postgres')
    except KeyError:
        return None, None
    return entry.pw_uid, entry.pw_gid


def _globals_noise(line):
    # Restoring globals onto a cluster that has the roles (the source host, a drill): expected.
    return 'already exists' in line


def create_database_sql(name, info, server_version_num):
    """CREATE DATABASE with the dumped database's encoding and locale (template0 allows any)."""
    parts = ['CREATE DATABASE %s TEMPLATE template0' % quote_ident(name)]
    info = info or {}
    if info.get('encoding'):
        parts.append('ENCODING %s' % quote_literal(info['encoding']))
    if info.get('collate'):
        parts.append('LC_COLLATE %s' % quote_literal(info['collate']))
    if info.get('ctype'):
        parts.append('LC_CTYPE %s' % quote_literal(info['ctype']))
    provider = info.get('locale_provider')
    if server_version_num >= 150000 and provider == 'icu' and info.get('locale'):
        parts.append('LOCALE_PROVIDER icu ICU_LOCALE %s' % quote_literal(info['locale']))
    elif server_version_num >= 170000 and provider == 'builtin' and info.get('locale'):
        parts.append('LOCALE_PROVIDER builtin BUILTIN_LOCALE %s' % quote_literal(info['locale']))
    return ' '.join(parts)


def drop_database_sql(name, server_version_num):
    sql = 'DROP DATABASE IF EXISTS %s' % quote_ident(name)
    return sql + ' WITH (FORCE)' if server_version_num >= 130000 else sql


def terminate_sessions_sql(name):
    return ('SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = %s '
            'AND pid <> pg_catalog.pg_backend_pid()' % quote_literal(name))


def sessions_sql(name):
    return ("SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), coalesce(client_addr::text, 'local') "
            "FROM pg_catalog.pg_stat_activity WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid() "
            "ORDER BY pid" % quote_literal(name))


SYSTEM_ID_SQL = 'SELECT system_identifier FROM pg_catalog.pg_control_system()'
ROLES_SQL = 'SELECT rolname FROM pg_catalog.pg_roles ORDER BY rolname'


def pg_restore_argv(pg_restore, connection, target, path, jobs, no_owner=False, no_privileges=False):
    argv = [pg_restore, '--exit-on-error', '--jobs=%d' % max(1, int(jobs))]
    if no_owner:
        argv.append('--no-owner')
    if no_privileges:
        argv.append('--no-privileges')
    argv.extend(connection.options())
    argv.extend(['--dbname=%s' % conninfo_dbname(target), path])
    return argv


def psql_file_argv(psql, connection, dbname, path, stop_on_error=True):
    argv = [psql, '-X', '-q']
    if stop_on_error:
        argv.extend(['-v', 'ON_ERROR_STOP=1'])
    return argv + connection.options() + ['-d', conninfo_dbname(dbname), '-f', path]


class RestoreJob(object):
    """One dump restored into a database of an existing cluster (see the module docstring).

    include_globals: replay the dump's roles and tablespaces (off unless asked; filtered, see
    filter_globals). drop_existing replaces an existing database, but refuses the database the dump
    came from on the same cluster and a database with sessions unless `force`.
    cluster_lock: take the target cluster's ClusterLock for the run (lock_dir)."""

    # The target is an existing cluster with data of its own: refuse what would destroy it.
    PROTECT = True

    def __init__(self, runner, source, target_database, jobs=0, no_owner=False, no_privileges=False,
                 include_globals=False, drop_existing=False, passphrase=None, connection=None, bin_dir=None,
                 sessions=None, owner=None, compare=True, work_dir=None, clock=None, say=None, force=False,
                 cluster_lock=True, lock_dir=None, hostname=None):
        if not target_database:
            raise EngineError('a target database name is required')
        self.runner = runner
        self.client = Client(runner, connection, bin_dir)
        self.connection = self.client.connection
        self.source = source
        self.target = target_database
        self.jobs = int(jobs) if jobs else default_jobs()
        self.no_owner = no_owner
        self.no_privileges = no_privileges
        self.include_globals = include_globals
        self.drop_existing = drop_existing
        self.passphrase = passphrase
        self.owner = owner if callable(owner) else Owner(owner if owner is not None else runner.run_as)
        self.sessions = sessions or session_factory(
            self.connection, os_user=runner.run_as if os.geteuid() == 0 else None)
        self.compare = compare
        self.work_dir = work_dir
        self.decrypt_dir = None  # the private directory of decrypted files, once there is one
        self.clock = clock or wall_clock.now
        self.say = say or (lambda text: None)
        self.force = bool(force)
        self.cluster_lock = cluster_lock
        self.lock_dir = lock_dir
        self.hostname = hostname or socket.getfqdn()
        self.globals_outcome = None
        self.lock_info = None

    def load(self):
        unit = layout.resolve_unit(self.source)
        manifest = layout.read_manifest(unit)
        fmt = manifest['options']['format']
        if fmt == 'plain' and (self.no_owner or self.no_privileges):
            raise EngineError('no_owner and no_privileges need a custom or directory dump; this one is plain')
        if manifest.get('encrypted') and not self.passphrase:
            raise EngineError('the dump at %s is encrypted: a passphrase is needed' % unit)
        return unit, manifest

    def verify(self, unit, manifest):
        problems = layout.verify_files(unit, manifest['files'])
        if problems:
            raise EngineError('the dump at %s does not match its manifest: %s' % (unit, '; '.join(problems)),
                              hint='the files were changed or damaged after the dump; use another dump')

    def plan(self):
        """Check mode: the dump that would be restored (checksums verified) and where. Changes nothing."""
        unit, manifest = self.load()
        self.verify(unit, manifest)
        exists = self.preflight(manifest, self.client.server_version_num())
        return {'source': unit, 'database': self.target, 'source_database': manifest['database'],
                'target_exists': exists, 'format': manifest['options']['format'],
                'encrypted': bool(manifest.get('encrypted')), 'tables': manifest['table_count'],
                'rows_total': manifest['rows_total'], 'globals': bool(self.include_globals and manifest.get('globals_path'))}

    # --- refusals: all of them before anything is changed -----------------------------------------

    def preflight(self, manifest, server_num):
        """Whether the target database exists; raises EngineError when the restore must not run."""
        exists = self.client.database_exists(self.target)
        if not exists:
            return False
        if not self.drop_existing:
            raise EngineError('database %r already exists' % self.target,
                              hint='choose a new name, or set drop_existing to replace it')
        if self.PROTECT:
            self._refuse_own_source(manifest)
            self._refuse_sessions(server_num)
        return True

    def _system_identifier(self):
        try:
            rows = self.client.rows(SYSTEM_ID_SQL)
        except EngineError:
            return None
        return str(rows[0][0]) if rows and rows[0] and rows[0][0] else None

    def _refuse_own_source(self, manifest):
        """drop_existing on the database the dump was taken from, on the same cluster, would replace the
        original with its own (older) copy."""
        if manifest.get('database') != self.target or self.force:
            return
        dumped = (manifest.get('database_info') or {}).get('system_identifier') or manifest.get('system_identifier')
        here = self._system_identifier()
        if dumped and here:
            if str(dumped) != here:
                return
            why = 'same system identifier %s' % here
        elif manifest.get('host') and manifest.get('host') != self.hostname:
            return
        else:
            why = ('the dump was taken on this host (%s) and its manifest has no system identifier to tell the '
                   'clusters apart' % self.hostname)
        raise EngineError('database %r is the database this dump was taken from, on the same cluster (%s): '
                          'drop_existing would replace the original with its own older copy' % (self.target, why),
                          hint='restore into a new database name and compare, or set force=true (--force) if '
                               'replacing the original really is what you want')

    def _refuse_sessions(self, server_num):
        sessions = self.client.rows(sessions_sql(self.target))
        if not sessions or self.force:
            return
        who = ', '.join('pid %s (%s%s, %s)' % (r[0], r[1] or '?', ' ' + r[2] if r[2] else '', r[3])
                        for r in sessions[:5])
        raise EngineError('database %r has %d active session(s): %s; drop_existing would cut them off'
                          % (self.target, len(sessions), who),
                          hint='stop the applications that use it (or wait for them), or set force=true (--force) '
                               'to terminate the sessions')

    # --- the cluster lock -----------------------------------------------------------------------

    def cluster_key(self):
        """'VERSION/NAME' of the target cluster when it runs on this host (None for another host)."""
        if not is_this_host(self.connection.host):
            return None
        port = int(self.connection.port or 5432)
        try:
            clusters = list_clusters(self.runner)
        except EngineError:
            clusters = []
        for cluster in clusters:
            if cluster['port'] == port:
                return '%s/%s' % (cluster['version'], cluster['name'])
        try:
            rows = self.client.rows('SHOW cluster_name')
        except EngineError:
            rows = []
        name = rows[0][0] if rows and rows[0] else ''
        return name if _CLUSTER_NAME_RE.match(name or '') else 'port-%d' % port

    def _lock(self):
        if not self.cluster_lock:
            return None
        key = self.cluster_key()
        if key is None:
            self.lock_info = {'cluster': None, 'note': 'the target cluster is on another host: no local lock'}
            return None
        uid, gid = lock_owner(self.runner.run_as)
        lock = ClusterLock(key, job='dump restore', lock_dir=self.lock_dir or cluster_lock_mod.DEFAULT_LOCK_DIR,
                           owner_uid=uid, owner_gid=gid,
                           details={'database': self.target, 'source': self.source})
        lock.acquire()  # a ClusterBusy or a clear EngineError when the lock directory cannot be made
        self.lock_info = {'cluster': key, 'path': lock.path, 'stale': lock.stale}
        if lock.stale:
            self.say('cluster %s: the lock of an earlier %s (pid %s) that ended without releasing it was cleared'
                     % (key, lock.stale.get('job'), lock.stale.get('pid')))
        return lock

    def run(self):
        lock = self._lock()
        try:
            result = self._run()
        except OSError as exc:
            raise os_failure(exc, 'restore of %s' % self.source)
        finally:
            if lock is not None:
                lock.release()
        if self.lock_info:
            result['cluster_lock'] = self.lock_info
        return result

    def _run(self):
        started = self.clock()
        unit, manifest = self.load()
        # A shared lock on the manifest: retention will not delete this dump while it is read.
        guard = open(os.path.join(unit, layout.MANIFEST))
        fcntl.flock(guard, fcntl.LOCK_SH)
        work = None
        old_umask = os.umask(0o077)
        try:
            self.say('verifying checksums of %s' % unit)
            self.verify(unit, manifest)
            server_num = self.client.server_version_num()
            exists = self.preflight(manifest, server_num)
            source = unit
            if manifest.get('encrypted'):
                work = self.make_work_dir(unit)
                source = self.decrypt(unit, manifest, work)
            dump_path = os.path.join(source, manifest['options']['dump_path'])
            if dump_path.endswith(GPG_SUFFIX):
                dump_path = dump_path[:-len(GPG_SUFFIX)]
            globals_path = manifest.get('globals_path')
            if globals_path and globals_path.endswith(GPG_SUFFIX):
                globals_path = globals_path[:-len(GPG_SUFFIX)]
            restored_globals = False
            if self.include_globals and globals_path:
                self.say('restoring globals (roles, tablespaces)')
                self.restore_globals(os.path.join(source, globals_path))
                restored_globals = True
            if exists:
                self.say('dropping the existing database %s' % self.target)
                if self.force and server_num < 130000:
                    self.client.rows(terminate_sessions_sql(self.target))
                self.client.rows(drop_database_sql(self.target, server_num))
            self.client.rows(create_database_sql(self.target, manifest.get('database_info'), server_num))
            self.say('restoring %s into database %s' % (manifest['database'], self.target))
            t0 = self.clock()
            self.restore_data(manifest['options']['format'], dump_path)
            restore_seconds = round(self.clock() - t0, 3)
        finally:
            os.umask(old_umask)
            if work:
                remove_path(work)
            guard.close()
        result = {'database': self.target, 'source': unit, 'source_database': manifest['database'],
                  'globals_restored': restored_globals, 'globals': self.globals_outcome,
                  'dropped_existing': exists, 'restore_seconds': restore_seconds,
                  'format': manifest['options']['format'], 'encrypted': bool(manifest.get('encrypted'))}
        if self.compare:
            session = self.sessions(self.target, export_snapshot=False)
            try:
                session.open()
                counts = session.counts()
            finally:
                session.close()
            comparison = layout.compare_counts(manifest, counts)
            result.update(comparison)
            result['large_objects'] = counts['large_objects']
            if not comparison['matches']:
                first = '; '.join('%s.%s %s (expected %s, restored %s)' % (
                    m['schema'], m['name'], m['problem'], m['expected'], m['restored'])
                    for m in comparison['mismatches'][:5])
                raise RestoreMismatch('restored database %r does not match the manifest: %s' % (self.target, first),
                                      result)
            self.say('database %s matches the manifest: %d tables, %d rows' % (
                self.target, comparison['tables_compared'], comparison['rows_total']))
        result['duration_seconds'] = round(self.clock() - started, 3)
        return result

    def make_work_dir(self, unit):
        # Named after this host and process, so that the next run removes what a killed one decrypted.
        self.decrypt_dir = decrypt_work_dir(self.work_dir or os.path.dirname(unit), chown=self.owner, say=self.say)
        return self.decrypt_dir

    def decrypt(self, unit, manifest, work):
        self.say('decrypting into %s' % work)
        with Gpg(self.runner, self.passphrase, chown=self.owner) as gpg:
            for entry in manifest['files']:
                rel = entry['path']
                plain_rel = rel[:-len(GPG_SUFFIX)] if rel.endswith(GPG_SUFFIX) else rel
                target = os.path.join(work, plain_rel)
                parent = os.path.dirname(target)
                if not os.path.isdir(parent):
                    make_private_dir(parent, self.owner)
                if rel.endswith(GPG_SUFFIX):
                    gpg.decrypt(os.path.join(unit, rel), target)
                else:
                    shutil.copyfile(os.path.join(unit, rel), target)
                    self.owner(target)
        return work

    def restore_globals(self, path):
        """Replay the globals into the existing cluster: only what filter_globals keeps."""
        with open(path, 'rb') as handle:
            text = handle.read().decode('utf-8', 'surrogateescape')
        existing = [r[0] for r in self.client.rows(ROLES_SQL)]
        text, outcome = filter_globals(text, existing)
        # The filtered copy may hold password hashes of the roles it creates: it goes to a private work
        # directory that the next run removes if this one is killed (the decryption's, when there is one).
        own_dir = None if self.decrypt_dir else decrypt_work_dir(
            self.work_dir or tempfile.gettempdir(), chown=self.owner, say=self.say)
        fd, copy = tempfile.mkstemp(prefix='.globals-', suffix='.sql', dir=own_dir or self.decrypt_dir)
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(text.encode('utf-8', 'surrogateescape'))
            os.chmod(copy, 0o600)
            self.owner(copy)
            result = self.client.run(psql_file_argv(self.client.binary('psql'), self.connection, 'postgres', copy,
                                                    stop_on_error=False), check=False)
            check_result(result, 'restoring globals', ignore=_globals_noise)
        finally:
            os.unlink(copy)
            if own_dir:
                shutil.rmtree(own_dir, ignore_errors=True)
        self.globals_outcome = outcome
        if outcome['left_unchanged']:
            self.say('globals: existing roles left unchanged (password, attributes, memberships): %s'
                     % ', '.join(outcome['left_unchanged']))
        return outcome

    def restore_data(self, fmt, path):
        if fmt == 'plain':
            argv = psql_file_argv(self.client.binary('psql'), self.connection, self.target, path)
            what = 'psql restore of the plain dump'
        else:
            argv = pg_restore_argv(self.client.binary('pg_restore'), self.connection, self.target, path,
                                   self.jobs if fmt in ('custom', 'directory') else 1,
                                   self.no_owner, self.no_privileges)
            what = 'pg_restore into database %r' % self.target
        result = self.client.run(argv, check=False)
        try:
            return check_result(result, what)
        except EngineError as exc:
            exc.hint = 'database %r was left as it is for inspection; drop it when done' % self.target
            raise


class RestoreMismatch(EngineError):
    """The restore worked but the data differs from the manifest: the dump did not prove itself."""

    def __init__(self, msg, result):
        super(RestoreMismatch, self).__init__(msg, hint='compare the listed tables; the dump should not be trusted')
        self.result = result
