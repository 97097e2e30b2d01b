# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore a logical dump into a new database and prove it against its manifest.

Order: verify every file's sha256 against the manifest, decrypt (gpg) into a private work
directory, restore the globals (roles, tablespaces; "already exists" is expected on the source
host), create the target database with the source's encoding and locale from template0, run
pg_restore with --jobs (or psql for a plain dump), then count every table of the restored
database and compare with the counts taken in the dump's snapshot. Any difference fails.
The restore drill reuses this.
"""

import fcntl
import os
import shutil
import tempfile
import time

from . import clock as wall_clock
from . import dump_manifest as layout
from .dump_crypto import GPG_SUFFIX, Gpg
from .dump_session import quote_ident, session_factory
from .pg_dump import (Client, Owner, check_result, conninfo_dbname, default_jobs, make_private_dir,
                      os_failure, quote_literal, remove_path)
from .process import EngineError


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
    def __init__(self, runner, source, target_database, jobs=0, no_owner=False, no_privileges=False,
                 include_globals=True, drop_existing=False, passphrase=None, connection=None, bin_dir=None,
                 sessions=None, owner=None, compare=True, work_dir=None, clock=None, say=None):
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
        self.clock = clock or wall_clock.now
        self.say = say or (lambda text: None)

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
        exists = self.client.database_exists(self.target)
        if exists and not self.drop_existing:
            raise EngineError('database %r already exists' % self.target,
                              hint='choose a new name, or set drop_existing to replace it')
        return {'source': unit, 'database': self.target, 'source_database': manifest['database'],
                'target_exists': exists, 'format': manifest['options']['format'],
                'encrypted': bool(manifest.get('encrypted')), 'tables': manifest['table_count'],
                'rows_total': manifest['rows_total']}

    def run(self):
        try:
            return self._run()
        except OSError as exc:
            raise os_failure(exc, 'restore of %s' % self.source)

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
            if self.client.database_exists(self.target):
                if not self.drop_existing:
                    raise EngineError('database %r already exists' % self.target,
                                      hint='choose a new name, or set drop_existing to replace it')
                self.say('dropping the existing database %s' % self.target)
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
                  'globals_restored': restored_globals, 'restore_seconds': restore_seconds,
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
        parent = self.work_dir or os.path.dirname(unit)
        work = tempfile.mkdtemp(prefix=layout.RESTORE_PREFIX, dir=parent)
        self.owner(work)
        return work

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
        result = self.client.run(psql_file_argv(self.client.binary('psql'), self.connection, 'postgres', path,
                                                stop_on_error=False), check=False)
        check_result(result, 'restoring globals', ignore=_globals_noise)

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
