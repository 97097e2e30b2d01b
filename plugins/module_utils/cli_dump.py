# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup dump` and `pgops-backup restore-dump`: the logical backup jobs as host commands.

A job's settings come from a JSON job file (what the pg_dump role writes: no quoting problems with
patterns or names in systemd units) and/or flags; flags win. Progress goes to stderr, the job
record to the record directory (and stdout with --json). Secrets: only a passphrase file (0600)
or the name of an environment variable, never a value on the command line.
"""

import re
import socket

from . import dump_crypto
from . import pg_dump as dump_engine
from .dump_restore import RestoreJob, RestoreMismatch
from .process import EngineError, Runner
from .records import JobRecord
from .cli_output import say as _say, emit as _emit, run_as as _run_as, terminate_cleanly as _terminate_cleanly, load_settings_file

DUMP_DEFAULTS = {
    'job': 'adhoc', 'destination': None, 'databases': [], 'format': 'custom', 'compression': 'auto',
    'compression_level': None, 'jobs': 0, 'exclude_table_data': [], 'extra_options': [], 'globals': True,
    'encrypt': False, 'passphrase_file': None, 'passphrase_env': None, 'retention_count': 0,
    'retention_max_age': None, 'retention_policy': None, 'port': None, 'host': None, 'user': None, 'passfile': None, 'bin_dir': None,
}
JOB_FILE_KEYS = frozenset(DUMP_DEFAULTS)
JOB_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')


def load_job_file(path):
    return load_settings_file(path, 'job file', JOB_FILE_KEYS,
                              hint='a passphrase goes in passphrase_file (0600), never in the job file')


def dump_settings(args):
    """Defaults, then the job file, then flags given on the command line."""
    settings = dict(DUMP_DEFAULTS)
    if args.job_file:
        settings.update(load_job_file(args.job_file))
    for key in DUMP_DEFAULTS:
        value = getattr(args, key, None)
        if value is not None and value != []:
            settings[key] = value
    if not settings['destination']:
        raise EngineError('a destination is required (--destination or the job file)')
    if not JOB_NAME_RE.match(str(settings['job'])):
        raise EngineError('job name %r: use letters, digits, _ . - only' % (settings['job'],))
    return settings


def _connection(settings):
    return dump_engine.Connection(port=settings.get('port'), host=settings.get('host'),
                                  user=settings.get('user'), passfile=settings.get('passfile'))


def _passphrase(settings, required):
    value = dump_crypto.load_passphrase(passphrase_file=settings.get('passphrase_file'),
                                        passphrase_env=settings.get('passphrase_env'))
    if required and value is None:
        raise EngineError('encryption is on but no passphrase_file or passphrase_env is set')
    return value


def cmd_dump(args):
    _terminate_cleanly()
    try:
        settings = dump_settings(args)
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 2
    runner = Runner(run_as=_run_as(args))
    record = JobRecord('pg-dump-%s' % settings['job'], args.record_dir, dump_job=settings['job'],
                       destination=settings['destination'], host=socket.getfqdn(),
                       mode='prune' if args.prune_only else 'dump')
    try:
        passphrase = _passphrase(settings, settings['encrypt']) if settings['encrypt'] else None
        job = dump_engine.DumpJob(
            runner, settings['destination'], databases=settings['databases'], fmt=settings['format'],
            compression=settings['compression'], compression_level=settings['compression_level'],
            jobs=settings['jobs'], exclude_table_data=settings['exclude_table_data'],
            extra_options=settings['extra_options'], include_globals=settings['globals'],
            passphrase=passphrase, retention_count=settings['retention_count'],
            retention_max_age=settings['retention_max_age'], retention_policy=settings['retention_policy'],
            connection=_connection(settings),
            bin_dir=settings['bin_dir'], job=settings['job'], say=lambda text: _say(args, text))
        if args.dry_run:
            plan = job.plan()
            for item in plan['would_dump']:
                _say(args, 'would dump %s into %s' % (item['database'], item['path']))
            for path in plan['would_prune']:
                _say(args, 'would prune %s' % path)
            _emit(args, plan)
            return 0
        if args.prune_only:
            pruned = job.prune()
            data = record.finish('ok', pruned=pruned, commands=runner.commands)
            _say(args, 'retention applied: %d dump(s) pruned' % len(pruned))
            _emit(args, data)
            return 0
        _say(args, 'job %s: dumping to %s' % (settings['job'], settings['destination']))
        result = job.run()
    except (EngineError, OSError) as exc:
        exc = dump_engine.os_failure(exc, 'pgops-backup dump')
        if exc.code == 'locked':
            data = record.finish('skipped', reason=exc.msg, commands=runner.commands)
            _say(args, 'skipped: %s' % exc.msg)
            _emit(args, data)
            return 0
        data = record.finish('failed', error=exc.full_message(), rc=exc.rc, commands=runner.commands)
        _say(args, 'FAILED: %s' % exc.full_message())
        _emit(args, data)
        return 1
    summary = dict(
        databases=[d['database'] for d in result['dumps']], failed=result['failed'],
        dumps=[dict((k, d[k]) for k in ('database', 'path', 'size_bytes', 'rows_total', 'table_count',
                                        'large_objects', 'duration_seconds', 'encrypted', 'partial',
                                        'partial_reasons')) for d in result['dumps']],
        partial=any(d['partial'] for d in result['dumps']),
        pruned=result['pruned'], size_bytes=result['size_bytes'], format=result['format'],
        compression=result['compression'], compression_level=result['compression_level'],
        pg_dump_version=result['pg_dump_version'], commands=runner.commands)
    if result['failed']:
        data = record.finish('failed', error='; '.join('%s: %s' % (f['database'], f['error']) for f in result['failed']),
                             **summary)
        _say(args, 'FAILED: %d of %d database(s) could not be dumped' % (
            len(result['failed']), len(result['failed']) + len(result['dumps'])))
        _emit(args, data)
        return 1
    data = record.finish('ok', **summary)
    _say(args, 'job %s done in %.1f s: %d database(s), %d bytes, %d dump(s) pruned' % (
        settings['job'], result['duration_seconds'], len(result['dumps']), result['size_bytes'], len(result['pruned'])))
    _emit(args, data)
    return 0


def cmd_restore_dump(args):
    _terminate_cleanly()
    runner = Runner(run_as=_run_as(args))
    name = args.job or 'restore-%s' % args.target_database
    record = JobRecord('pg-dump-%s' % name, args.record_dir, source=args.source, database=args.target_database,
                       host=socket.getfqdn())
    settings = {'port': args.port, 'host': args.host, 'user': args.user, 'passfile': args.passfile,
                'passphrase_file': args.passphrase_file, 'passphrase_env': args.passphrase_env}
    try:
        job = RestoreJob(
            runner, args.source, args.target_database, jobs=args.jobs, no_owner=args.no_owner,
            no_privileges=args.no_privileges, include_globals=args.with_globals and not args.no_globals,
            drop_existing=args.drop_existing, force=args.force, passphrase=_passphrase(settings, False),
            connection=_connection(settings), bin_dir=args.bin_dir, compare=not args.no_compare,
            work_dir=args.work_dir, say=lambda text: _say(args, text))
        if args.dry_run:
            plan = job.plan()
            _say(args, 'would restore %s into database %s' % (plan['source'], plan['database']))
            _emit(args, plan)
            return 0
        result = job.run()
    except OSError as exc:
        exc = dump_engine.os_failure(exc, 'pgops-backup restore-dump')
        data = record.finish('failed', error=exc.full_message(), commands=runner.commands)
        _say(args, 'FAILED: %s' % exc.full_message())
        _emit(args, data)
        return 1
    except RestoreMismatch as exc:
        data = record.finish('failed', error=exc.full_message(), commands=runner.commands,
                             mismatches=exc.result.get('mismatches'))
        _say(args, 'FAILED: %s' % exc.full_message())
        _emit(args, data)
        return 1
    except EngineError as exc:
        data = record.finish('failed', error=exc.full_message(), rc=exc.rc, commands=runner.commands)
        _say(args, 'FAILED: %s' % exc.full_message())
        _emit(args, data)
        return 1
    data = record.finish('ok', commands=runner.commands, **result)
    _say(args, 'restored %s into %s in %.1f s' % (result['source'], result['database'], result['duration_seconds']))
    _emit(args, data)
    return 0


def _connection_flags(p):
    p.add_argument('--port', type=int, help='PostgreSQL port (default: libpq default, 5432)')
    p.add_argument('--host', help='socket directory or host (default: the local socket)')
    p.add_argument('--user', help='database user (default: the OS user the tools run as)')
    p.add_argument('--passfile', help='libpq password file (0600) for password authentication')
    p.add_argument('--bin-dir', dest='bin_dir', help='directory of pg_dump/pg_restore/psql (default: PATH)')
    p.add_argument('--passphrase-file', dest='passphrase_file', help='gpg passphrase file, mode 0600')
    p.add_argument('--passphrase-env', dest='passphrase_env',
                   help='name of the environment variable holding the gpg passphrase')


def register(subparsers):
    """Add `dump` and `restore-dump` to the pgops-backup parser."""
    p = subparsers.add_parser('dump', help='logical backup with pg_dump: dump, verify, manifest, retention')
    p.add_argument('--job-file', dest='job_file', help='JSON job settings (written by the pg_dump role)')
    p.add_argument('--job', help='job name (record pg-dump-JOB.json)')
    p.add_argument('--destination', help='directory that receives DATABASE/STAMP/ dumps')
    p.add_argument('--database', dest='databases', action='append', default=[],
                   help='database to dump (repeat); default: every connectable non-template database')
    p.add_argument('--format', choices=dump_engine.FORMATS)
    p.add_argument('--compression', choices=dump_engine.COMPRESSION_METHODS)
    p.add_argument('--compression-level', dest='compression_level', type=int)
    p.add_argument('--jobs', type=int, help='parallel pg_dump jobs for the directory format (0: cores)')
    p.add_argument('--exclude-table-data', dest='exclude_table_data', action='append', default=[],
                   metavar='PATTERN')
    p.add_argument('--option', dest='extra_options', action='append', default=[], metavar='--NAME[=VALUE]',
                   help='extra pg_dump option, written as --option=--no-comments')
    p.add_argument('--no-globals', dest='globals', action='store_const', const=False, default=None)
    p.add_argument('--encrypt', action='store_const', const=True, default=None)
    p.add_argument('--keep-count', dest='retention_count', type=int, help='good dumps kept per database (0: no limit)')
    p.add_argument('--max-age', dest='retention_max_age', help='delete dumps older than this (14d, 36h, ...)')
    p.add_argument('--prune-only', dest='prune_only', action='store_true', help='apply retention, dump nothing')
    p.add_argument('--dry-run', dest='dry_run', action='store_true', help='say what would be dumped and pruned')
    _connection_flags(p)
    p.set_defaults(func=cmd_dump)

    p = subparsers.add_parser('restore-dump', help='restore a logical dump into a new database and compare counts')
    p.add_argument('--source', required=True, help='a dump directory, or a database directory (newest good dump)')
    p.add_argument('--target-database', dest='target_database', required=True)
    p.add_argument('--jobs', type=int, default=0, help='parallel pg_restore jobs (0: cores)')
    p.add_argument('--no-owner', dest='no_owner', action='store_true')
    p.add_argument('--no-privileges', dest='no_privileges', action='store_true')
    p.add_argument('--globals', dest='with_globals', action='store_true',
                   help='also restore the roles and tablespaces of the dump (missing roles only; existing roles, '
                        'their passwords included, are left as they are)')
    p.add_argument('--no-globals', dest='no_globals', action='store_true', help='(the default) do not restore '
                   'roles/tablespaces')
    p.add_argument('--drop-existing', dest='drop_existing', action='store_true')
    p.add_argument('--force', action='store_true', help='with --drop-existing: replace the database the dump came '
                   'from on the same cluster, and terminate its sessions')
    p.add_argument('--no-compare', dest='no_compare', action='store_true')
    p.add_argument('--work-dir', dest='work_dir', help='where encrypted dumps are decrypted (default: next to the dump)')
    p.add_argument('--job', help='record name (default: restore-TARGET)')
    p.add_argument('--dry-run', dest='dry_run', action='store_true')
    _connection_flags(p)
    p.set_defaults(func=cmd_restore_dump)
