# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup pitr ...`: point-in-time recovery from a shell on the database host.

    pgops-backup pitr plan    --stanza main --time '2026-05-02 14:29:59+02'
    pgops-backup pitr restore --stanza main --time '2026-05-02 14:29:59+02' --stop-cluster --confirm "$(hostname -f)"
    pgops-backup pitr restore --stanza main --name before_migration --elsewhere --scratch-name forensics
    pgops-backup pitr scratch-list
    pgops-backup pitr scratch-remove forensics
    pgops-backup pitr restore-point before_migration --stanza main

Same engine and safety as the pitr_restore module: `plan` changes nothing; `restore` runs the
same preflight first and needs --confirm with this host's name for an in-place restore.
"""

import socket
import sys

from . import pgbackrest as pgbr_mod
from .cluster_lock import DEFAULT_LOCK_DIR
from .pitr import ACTIONS, Target
from .postgres import Psql, find_cluster, list_clusters
from .process import EngineError, Runner, progress_printer
from .recovery import Pitr, Request
from .restore_point import DEFAULT_REGISTRY_DIR, create_restore_point
from .scratch import DEFAULT_BASE_DIR, list_scratch
from .cli_output import say as _say, emit as _emit

TARGET_FLAGS = (('time', 'time'), ('xid', 'xid'), ('name', 'name'), ('lsn', 'lsn'))


def _runner(args):
    stream = None if args.quiet else progress_printer()
    return Runner(run_as=args.run_as or 'postgres', stream=stream)


def _target(args):
    given = [(kind, getattr(args, attr)) for attr, kind in TARGET_FLAGS if getattr(args, attr) is not None]
    if args.immediate:
        given.append(('immediate', None))
    if args.latest:
        given.append(('latest', None))
    if getattr(args, 'standby', False):
        given.append(('standby', None))
    if len(given) != 1:
        raise EngineError('give exactly one target: --time, --xid, --name, --lsn, --immediate or --latest')
    kind, value = given[0]
    return Target(kind, value, inclusive=not args.exclusive, action=args.action, timeline=args.timeline)


def _pitr(args, runner):
    pgbr = pgbr_mod.PgBackRest(runner, stanza=args.stanza, config=args.config)
    progress = None if args.quiet else progress_printer()
    return Pitr(pgbr, pg_version=args.pg_version, pg_cluster=args.pg_cluster, record_dir=args.record_dir,
                registry_dir=args.registry_dir, progress=progress,
                lock_dir=getattr(args, 'lock_dir', None) or DEFAULT_LOCK_DIR)


def _request(args):
    return Request(_target(args), destination='elsewhere' if args.elsewhere else 'in_place',
                   backup_set=args.set, repo=args.repo, stop_cluster=getattr(args, 'stop_cluster', False),
                   delta=getattr(args, 'delta', False), switch_wal=not args.no_switch_wal,
                   wal_scan_segments=args.wal_scan_segments, timeout=args.timeout,
                   primary_conninfo=getattr(args, 'primary_conninfo', None), scratch_name=args.scratch_name,
                   scratch_port=args.scratch_port, scratch_base_dir=args.scratch_base_dir,
                   scratch_state=getattr(args, 'scratch_state', None) or 'stopped',
                   scratch_reserve=getattr(args, 'scratch_reserve', None),
                   requested_by=args.requested_by, reason=args.reason,
                   allow_standby=getattr(args, 'allow_standby', False),
                   force_rebuild=getattr(args, 'force_rebuild', False))


def print_plan(plan, out=None):
    write = (out or sys.stdout).write
    write('Point-in-time recovery plan for stanza %s on %s\n' % (plan['stanza'], plan['host']))
    write('  target:      %s\n' % plan['target']['description'])
    if plan.get('backup_set'):
        b = plan['backup_set']
        write('  backup set:  %s (%s, ended %s, LSN %s; %s)\n'
              % (b['label'], b['type'], b['stop'], b['lsn_stop'], b['reason']))
    win = plan['window']
    write('  window:      %s .. %s (archive ends with %s)\n'
          % (win['from_time'], win['to_time'] or '?', win['to_segment']))
    for check in plan['checks']:
        write('  ok  %-15s %s\n' % (check['name'], check['detail']))
    for warning in plan['warnings']:
        write('  WARNING: %s\n' % warning)
    for run in plan.get('interrupted_runs') or []:
        write('  UNFINISHED: run of %s (pid %s): data directory before it at %s\n'
              % (run['started_at'], run['pid'], run['moved_aside_to'] or '(not moved)'))
    write('  steps:\n')
    for number, step in enumerate(plan['steps'], 1):
        write('    %d. %s\n' % (number, step))


def cmd_plan(args):
    runner = _runner(args)
    try:
        result = _pitr(args, runner).run(_request(args), check_mode=True)
    except EngineError as exc:
        _say(args, 'REFUSED: %s' % exc.full_message())
        return 1
    if args.json:
        _emit(args, result['plan'])
    else:
        print_plan(result['plan'])
    return 0


def cmd_restore(args):
    runner = _runner(args)
    try:
        request = _request(args)
        if request.destination == 'in_place' and args.confirm not in (socket.gethostname(), socket.getfqdn()):
            raise EngineError('an in-place restore replaces this host\'s database: repeat this host\'s name with '
                              '--confirm (%s)' % socket.getfqdn(), hint='run `pgops-backup pitr plan` first and read it')
        result = _pitr(args, runner).run(request)
    except EngineError as exc:
        _say(args, '%s: %s' % (getattr(exc, 'status', 'failed').upper(), exc.full_message()))
        _emit(args, {'status': getattr(exc, 'status', 'failed'), 'error': exc.full_message(),
                     'record': getattr(exc, 'record', None)})
        return 1
    _say(args, 'done: %stimeline %s, recovered to %s (LSN %s), %s; record %s' % (
        'standby %s, ' % result['standby']['status'] if result.get('standby') else '',
        result.get('timeline'), result.get('recovered_to'), result.get('recovery_end_lsn'),
        ', '.join('%s %ss' % kv for kv in sorted(result['durations'].items())), result.get('record')))
    _emit(args, result)
    return 0


def cmd_scratch_list(args):
    runner = _runner(args)
    names = list_scratch(runner, args.scratch_base_dir)
    if args.json:
        _emit(args, names)
    else:
        for name in names:
            sys.stdout.write('%s\n' % name)
    return 0


def cmd_scratch_remove(args):
    runner = _runner(args)
    pgbr = pgbr_mod.PgBackRest(runner, stanza=args.stanza, config=args.config)
    try:
        version = args.pg_version or str(max(pgbr.stanza_info()['databases'], key=lambda d: d['id'])['version'])
        result = Pitr(pgbr, pg_version=version, record_dir=None).remove_scratch(args.name, args.scratch_base_dir)
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 1
    _say(args, 'scratch instance %s %s' % (args.name, 'removed' if result['changed'] else 'did not exist'))
    _emit(args, result)
    return 0


def cmd_restore_point(args):
    runner = _runner(args)
    pgbr = pgbr_mod.PgBackRest(runner, stanza=args.stanza, config=args.config) if args.stanza else None
    try:
        cluster = find_cluster(list_clusters(runner), args.pg_version, args.pg_cluster)
        result = create_restore_point(Psql(runner, port=cluster['port']), args.point, args.registry_dir, pgbr=pgbr,
                                      archive=pgbr is not None, requested_by=args.requested_by, reason=args.reason)
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 1
    point = result['restore_point']
    done = 'created' if result['changed'] else 'already exists'
    _say(args, 'restore point %s %s at LSN %s (%s)' % (args.point, done, point.get('lsn'), point.get('created_at')))
    _emit(args, result)
    return 0


def _common(p, stanza_required=True):
    p.add_argument('--stanza', required=stanza_required)
    p.add_argument('--pg-version', help='major version of the cluster (default: the only one named --pg-cluster)')
    p.add_argument('--pg-cluster', default='main')
    p.add_argument('--registry-dir', default=DEFAULT_REGISTRY_DIR, help='restore point registry')
    p.add_argument('--requested-by', help='who asked for this (audit record)')
    p.add_argument('--reason', help='why (ticket, incident)')


def _target_args(p):
    p.add_argument('--time', help="timestamp with its UTC offset, e.g. '2026-05-02 14:29:59+02'")
    p.add_argument('--xid', help='transaction id')
    p.add_argument('--name', help='restore point name')
    p.add_argument('--lsn', help='WAL location, e.g. 0/3000060')
    p.add_argument('--immediate', action='store_true', help='the end of the backup')
    p.add_argument('--latest', action='store_true', help='the end of the archived WAL')
    p.add_argument('--exclusive', action='store_true', help='stop just before the target')
    p.add_argument('--action', choices=ACTIONS, default='promote')
    p.add_argument('--timeline', help='latest (default), current or a number')
    p.add_argument('--set', help='backup set label (default: chosen to precede the target)')
    p.add_argument('--repo', type=int)
    p.add_argument('--elsewhere', action='store_true', help='restore into a scratch instance, not over the cluster')
    p.add_argument('--scratch-name', default='pitr')
    p.add_argument('--scratch-port', type=int)
    p.add_argument('--scratch-base-dir', default=DEFAULT_BASE_DIR)
    p.add_argument('--scratch-state', choices=('stopped', 'running', 'removed'), default='stopped',
                   help='the scratch instance after the run: stopped (default; the output says how to start it), '
                        'running (kept for inspection) or removed')
    p.add_argument('--scratch-reserve', help="free space kept on production's data and pg_wal file systems: auto "
                                             "(default: the larger of 10%% and 1 GiB), a percentage or a size; 0: off")
    p.add_argument('--no-switch-wal', action='store_true', help='never switch WAL on the running cluster')
    p.add_argument('--wal-scan-segments', type=int, default=256)
    p.add_argument('--timeout', type=int, default=3600, help='seconds to wait for recovery')
    p.add_argument('--allow-standby', action='store_true',
                   help='recover in place although the cluster is a standby or not the primary of the stanza '
                        '(the recovered instance gets archive_mode=off)')
    p.add_argument('--lock-dir', default=DEFAULT_LOCK_DIR, help='directory of the per-cluster locks')


def register(subparsers):
    """Add `pitr` and its subcommands to the pgops-backup parser."""
    pitr = subparsers.add_parser('pitr', help='point-in-time recovery: plan, restore, scratch instances, restore points')
    sub = pitr.add_subparsers(dest='pitr_command')
    sub.required = True

    p = sub.add_parser('plan', help='preflight only: show the window, the backup set and the steps; changes nothing')
    _common(p)
    _target_args(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser('restore', help='restore to a target (in place needs --confirm HOSTNAME)')
    _common(p)
    _target_args(p)
    p.add_argument('--standby', action='store_true', help='rebuild this cluster as a standby (--type=standby)')
    p.add_argument('--primary-conninfo', help='conninfo of the primary for --standby (no password: use .pgpass)')
    p.add_argument('--force-rebuild', action='store_true',
                   help='rebuild as a standby although pg_control says the stopped cluster was a primary')
    p.add_argument('--stop-cluster', action='store_true', help='stop the running cluster first')
    p.add_argument('--delta', action='store_true', help='overwrite the data directory in place instead of moving it aside')
    p.add_argument('--confirm', help="this host's name: required for an in-place restore")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser('scratch-list', help='list scratch instances')
    p.add_argument('--scratch-base-dir', default=DEFAULT_BASE_DIR)
    p.set_defaults(func=cmd_scratch_list)

    p = sub.add_parser('scratch-remove', help='stop and delete a scratch instance')
    p.add_argument('name')
    p.add_argument('--stanza', required=True)
    p.add_argument('--pg-version')
    p.add_argument('--scratch-base-dir', default=DEFAULT_BASE_DIR)
    p.set_defaults(func=cmd_scratch_remove)

    p = sub.add_parser('restore-point', help='create a named restore point (and archive it when --stanza is given)')
    p.add_argument('point', metavar='NAME')
    _common(p, stanza_required=False)
    p.set_defaults(func=cmd_restore_point)
    return pitr
