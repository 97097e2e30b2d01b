# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup restore-test` and `pgops-backup heartbeat`: restore drills and the heartbeat they
measure RPO with, as host commands.

    pgops-backup restore-test --source pgbackrest --stanza main
    pgops-backup restore-test --source pg_dump --dump-job nightly --sql-check orders 'SELECT count(*) > 0 FROM orders' t
    pgops-backup restore-test --drill-file /etc/pgops-backup/restore-test-weekly.json
    pgops-backup restore-test --name pgbackrest --remove-kept
    pgops-backup heartbeat --port 5432 --database postgres

A drill's settings come from a JSON drill file (what the restore_test role writes) and/or flags;
flags win. The report is printed as a table on stdout (as JSON with --json) and kept as the record
restore_test-NAME.json. Exit 0 only when every check passed.
"""

import json
import socket
import sys

from .postgres import Psql
from .process import EngineError, Runner, progress_printer
from .records import JobRecord
from .restore_drill import DEFAULTS, DRILL_TARGET_TYPES, SOURCES, Drill, DrillFailed, Settings, render_report
from .restore_drill_checks import HEARTBEAT_MODES, write_heartbeat
from .restore_drill_sources import DEFAULT_JOB_DIR
from .cli_output import say as _say, run_as as _run_as, terminate_cleanly as _terminate_cleanly, load_settings_file


def load_drill_file(path):
    return load_settings_file(path, 'drill file', DEFAULTS)


FLAG_KEYS = ('name', 'source', 'stanza', 'backup_set', 'repo', 'target_type', 'target', 'dump_job', 'dump_destination',
             'passphrase_file', 'heartbeat', 'heartbeat_database', 'heartbeat_max_age', 'amcheck', 'heapallindexed',
             'full_read', 'checksums', 'keep_failed', 'scratch_base_dir', 'scratch_port', 'timeout', 'pg_version',
             'pg_cluster', 'jobs', 'scratch_reserve')


def drill_settings(args):
    """Defaults, then the drill file, then the flags given on the command line."""
    values = {}
    if args.drill_file:
        values.update(load_drill_file(args.drill_file))
    for key in FLAG_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    if args.config:
        values['config'] = args.config
    if args.sql_check:
        values['sql_checks'] = list(values.get('sql_checks') or []) + [
            {'name': n, 'query': q, 'expected': e, 'database': args.sql_database} for n, q, e in args.sql_check]
    return Settings(**values)


def print_report(report, out=None):
    out = out or sys.stdout
    for line in report.get('lines') or render_report(report):
        out.write(line + '\n')


def cmd_restore_test(args):
    _terminate_cleanly()
    try:
        settings = drill_settings(args)
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 2
    runner = Runner(run_as=_run_as(args), stream=None)
    progress = None if args.quiet else progress_printer()
    try:
        drill = Drill(runner, settings, record_dir=args.record_dir, job_dir=args.job_dir, progress=progress)
        if args.remove_kept:
            removed = drill.remove_kept()
            _say(args, 'scratch instance %s %s' % (settings.scratch_name, 'removed' if removed else 'did not exist'))
            return 0
        if args.plan:
            plan = drill.run(check_mode=True)
            if args.json:
                sys.stdout.write(json.dumps(plan, indent=2, sort_keys=True, default=str) + '\n')
            else:
                sys.stdout.write('Restore drill %s plan on %s\n' % (plan['name'], plan['host']))
                for number, step in enumerate(plan['steps'], 1):
                    sys.stdout.write('  %d. %s\n' % (number, step))
            return 0
        report = drill.run()
        status = 0
    except DrillFailed as exc:
        report = exc.report
        status = 1
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 1
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True, default=str) + '\n')
    else:
        print_report(report)
    if status:
        _say(args, 'FAILED: %s' % report.get('error'))
    else:
        _say(args, 'restore drill %s passed: RTO %s s, RPO %s s' % (settings.name, report.get('rto_seconds'),
                                                                    report.get('rpo_seconds')))
    return status


def cmd_heartbeat(args):
    """Write the heartbeat row on a primary; a standby is skipped (its primary writes it)."""
    runner = Runner(run_as=_run_as(args))
    psql = Psql(runner, port=args.port, dbname=args.database)
    record = JobRecord('heartbeat', args.record_dir, port=args.port, database=args.database, host=socket.getfqdn())
    try:
        if psql.is_in_recovery():
            record.finish('skipped', reason='standby')
            _say(args, 'skipped: the cluster on port %d is a standby' % args.port)
            return 0
        beat = write_heartbeat(psql, socket.getfqdn())
    except EngineError as exc:
        record.finish('failed', error=exc.full_message())
        _say(args, 'FAILED: %s' % exc.full_message())
        return 1
    record.finish('ok', beat_epoch=beat)
    if not args.quiet and args.verbose:
        _say(args, 'heartbeat written at %.3f' % beat)
    return 0


def _bool_flags(p, name, dest, help_on, help_off):
    p.add_argument('--%s' % name, dest=dest, action='store_const', const=True, default=None, help=help_on)
    p.add_argument('--no-%s' % name, dest=dest, action='store_const', const=False, help=help_off)


def register(subparsers):
    """Add `restore-test` and `heartbeat` to the pgops-backup parser."""
    p = subparsers.add_parser('restore-test', help='restore drill: restore the newest backup into a scratch instance '
                                                   'and prove it')
    p.add_argument('--drill-file', dest='drill_file', help='JSON drill settings (written by the restore_test role)')
    p.add_argument('--name', help='drill name (record restore_test-NAME.json; default: the source)')
    p.add_argument('--source', choices=SOURCES)
    p.add_argument('--stanza', help='pgBackRest stanza (pgbackrest source)')
    p.add_argument('--set', dest='backup_set', help='backup set label (default: the newest)')
    p.add_argument('--repo', type=int, help='repository to restore from (default: all)')
    p.add_argument('--target-type', dest='target_type', choices=DRILL_TARGET_TYPES,
                   help='immediate (default: the end of the backup), latest (the end of the archive), time, xid, name, lsn')
    p.add_argument('--target', help='value of a time, xid, name or lsn target')
    p.add_argument('--dump-job', dest='dump_job', help='pg_dump job whose newest dumps are restored (pg_dump source)')
    p.add_argument('--dump-destination', dest='dump_destination', help='dump destination (default: from the job record)')
    p.add_argument('--passphrase-file', dest='passphrase_file', help='gpg passphrase of encrypted dumps (0600)')
    p.add_argument('--sql-check', dest='sql_check', nargs=3, action='append', metavar=('NAME', 'QUERY', 'EXPECTED'),
                   help='a query and its expected result (psql unaligned: fields joined by |, rows by newlines)')
    p.add_argument('--sql-database', dest='sql_database', default='postgres', help='database of the --sql-check queries')
    p.add_argument('--heartbeat', choices=HEARTBEAT_MODES,
                   help='auto (default: checked when the table exists), required, off')
    p.add_argument('--heartbeat-database', dest='heartbeat_database')
    p.add_argument('--heartbeat-max-age', dest='heartbeat_max_age', help='e.g. 5m: how far the heartbeat may lag')
    _bool_flags(p, 'amcheck', 'amcheck', 'run pg_amcheck on every database (default)', 'skip pg_amcheck')
    _bool_flags(p, 'heapallindexed', 'heapallindexed', 'check that every heap tuple is indexed (default)',
                'only the cheaper index structure checks')
    _bool_flags(p, 'full-read', 'full_read', 'read every table in full (default)', 'skip the full read')
    _bool_flags(p, 'checksums', 'checksums', 'pg_checksums --check on the stopped copy (default)', 'skip pg_checksums')
    _bool_flags(p, 'keep-failed', 'keep_failed', 'keep the scratch instance (stopped) when the drill fails',
                'remove it whatever happened (default)')
    p.add_argument('--scratch-base-dir', dest='scratch_base_dir')
    p.add_argument('--scratch-port', dest='scratch_port', type=int)
    p.add_argument('--scratch-reserve', dest='scratch_reserve',
                   help="free space kept on production's data and pg_wal file systems: auto (default: the larger of "
                        "10%% and 1 GiB), a percentage (20%%) or a size (5G); 0 turns it off")
    p.add_argument('--timeout', type=int, help='seconds to wait for recovery')
    p.add_argument('--pg-version', dest='pg_version', help='server version of the scratch instance (default: the source\'s)')
    p.add_argument('--pg-cluster', dest='pg_cluster', help='production cluster name (default main)')
    p.add_argument('--jobs', type=int, help='parallel pg_restore jobs (0: cores)')
    p.add_argument('--job-dir', dest='job_dir', default=DEFAULT_JOB_DIR, help='where the pg_dump job files are')
    p.add_argument('--plan', action='store_true', help='show what the drill would do; change nothing')
    p.add_argument('--remove-kept', dest='remove_kept', action='store_true',
                   help='remove the scratch instance a failed drill kept, then exit')
    p.set_defaults(func=cmd_restore_test)

    p = subparsers.add_parser('heartbeat', help='write the heartbeat row restore drills measure RPO with (primary only)')
    p.add_argument('--port', type=int, default=5432)
    p.add_argument('--database', default='postgres')
    p.add_argument('--verbose', action='store_true')
    p.set_defaults(func=cmd_heartbeat)
