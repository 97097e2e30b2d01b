# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup retention`, `keep`, `dump-retention`, `dump-keep`: calendar retention and keep marks.

    pgops-backup retention --stanza main --policy '{"daily": 14, "weekly": 8, "monthly": 12}' [--repo 1] [--dry-run]
    pgops-backup keep --stanza main --set 20261121-091140F --reason 'audit 2026' [--release]
    pgops-backup dump-retention --destination /var/backups/pg_dump --policy-file /etc/pgops-backup/dump-policy.json
    pgops-backup dump-keep --set /var/backups/pg_dump/app/20261121T010000Z --reason 'ticket 42' [--release]

Each prints, per backup, what keeps it (rules, keep mark, newest good, needed by a kept backup) or why
it expires; --dry-run changes nothing. Records: pgbackrest-retention-STANZA, pg-dump-retention.
"""

import datetime
import getpass
import json
import os
import socket
import sys

from . import backup_retention
from . import clock
from . import dump_manifest as layout
from . import dump_retention
from . import pgbackrest as pgbr_mod
from . import retention_policy
from .pg_dump import remove_path, unit_in_use
from .postgres import tool_user
from .process import EngineError, Runner
from .records import JobRecord
from .cli_output import say as _say, emit as _emit

LOCK_ACQUIRE = 50


def load_policy(args):
    """The policy from --policy (JSON text) or --policy-file (a JSON file); exactly one is required."""
    if bool(args.policy) == bool(args.policy_file):
        raise EngineError('give the retention policy with exactly one of --policy JSON or --policy-file PATH',
                          hint='e.g. --policy \'{"daily": 14, "weekly": 8, "monthly": 12}\'')
    try:
        if args.policy_file:
            with open(args.policy_file) as handle:
                raw = json.load(handle)
        else:
            raw = json.loads(args.policy)
    except (IOError, OSError, ValueError) as exc:
        raise EngineError('cannot read the retention policy %s: %s' % (args.policy_file or repr(args.policy), exc),
                          hint='the policy is JSON: a mapping like {"daily": 14} or a list of {"every", "keep"}')
    rules = retention_policy.parse_policy(raw)
    if not rules:
        raise EngineError('the retention policy is empty: it would keep nothing but the newest backup',
                          hint='give at least one rule, e.g. {"daily": 14}')
    return raw


def _when(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%SZ') \
        if epoch else '-'


def describe(decision, name_key='label'):
    what = ('keep    %s' % ', '.join(decision['kept_by'])) if decision['action'] == 'keep' else \
        ('expire  %s' % decision['reason'])
    return '  %-40s %-5s %s  %s' % (decision[name_key], decision.get('type') or decision.get('kind') or '',
                                    _when(decision.get('stop') or decision.get('time')), what)


def cmd_retention(args):
    job = 'pgbackrest-retention-%s%s' % (args.stanza, '-repo%d' % args.repo if args.repo else '')
    record = JobRecord(job, args.record_dir, stanza=args.stanza, repo=args.repo, dry_run=args.dry_run,
                       host=socket.getfqdn())
    runner = Runner(run_as=tool_user(args.run_as))
    try:
        policy = load_policy(args)
        pgbr = pgbr_mod.PgBackRest(runner, stanza=args.stanza, config=args.config)
        result = backup_retention.apply(pgbr, policy, repo=args.repo, dry_run=args.dry_run,
                                        say=lambda text: _say(args, text))
    except EngineError as exc:
        if exc.code == LOCK_ACQUIRE:
            data = record.finish('skipped', reason='another pgBackRest command holds the stanza lock',
                                 commands=runner.commands)
            _say(args, 'skipped: another pgBackRest command of stanza %s is running' % args.stanza)
            _emit(args, data)
            return 0
        data = record.finish('failed', error=exc.full_message(), commands=runner.commands)
        _say(args, 'FAILED: %s' % exc.full_message())
        _emit(args, data)
        return 1
    for plan in result['plans']:
        if not args.quiet:
            sys.stderr.write('stanza %s repo%d: %d kept, %d %s\n' % (
                plan['stanza'], plan['repo'], len(plan['kept']), len(plan['expired']),
                'would expire' if args.dry_run else 'expired'))
            for decision in plan['backups']:
                sys.stderr.write(describe(decision) + '\n')
    data = record.finish('ok', policy=policy, plans=result['plans'], expired=result['expired'],
                         changed=result['changed'], commands=runner.commands)
    _emit(args, data)
    return 0


def _user(args):
    return args.user or os.environ.get('SUDO_USER') or getpass.getuser()


def cmd_keep(args):
    runner = Runner(run_as=tool_user(args.run_as))
    try:
        pgbr = pgbr_mod.PgBackRest(runner, stanza=args.stanza, config=args.config)
        result = backup_retention.mark(pgbr, args.set, repo=args.repo, user=_user(args), reason=args.reason,
                                       release=args.release, check_mode=args.dry_run)
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 1
    for m in result['marks']:
        _say(args, '%s%s %s in repo%d%s' % (
            'would have ' if args.dry_run else '', 'released' if args.release else 'marked', m['label'], m['repo'],
            '' if m['changed'] else ' (it had no keep mark)'))
    _emit(args, dict(result, commands=runner.commands))
    return 0


def _dump_units(destination, databases):
    names = databases or sorted(layout.database_dirs(destination))
    return dict((name, layout.list_units(os.path.join(destination, name))) for name in names)


def cmd_dump_retention(args):
    record = JobRecord('pg-dump-retention', args.record_dir, destination=args.destination, dry_run=args.dry_run,
                       host=socket.getfqdn())
    try:
        policy = load_policy(args)
        rules = retention_policy.parse_policy(policy)
        if not os.path.isdir(args.destination):
            raise EngineError('dump destination %s does not exist' % args.destination,
                              hint='name the directory the pg_dump job writes (pg_dump_destination)')
        now = clock.now()
        decisions, pruned = {}, []
        for database, units in sorted(_dump_units(args.destination, args.databases).items()):
            by_name = dict((u['name'], u) for u in units)
            decisions[database] = dump_retention.decide(units, now, rules)
            for d in decisions[database]:
                d['path'] = by_name[d['id']]['path']
                if d['action'] != 'expire' or args.dry_run:
                    continue
                if unit_in_use(d['path']):
                    _say(args, 'keeping %s for now: a restore is reading it' % d['path'])
                    continue
                remove_path(d['path'])
                pruned.append(d['path'])
    except (EngineError, OSError) as exc:
        msg = exc.full_message() if isinstance(exc, EngineError) else str(exc)
        data = record.finish('failed', error=msg)
        _say(args, 'FAILED: %s' % msg)
        _emit(args, data)
        return 1
    if not args.quiet:
        for database, items in sorted(decisions.items()):
            sys.stderr.write('database %s:\n' % database)
            for d in items:
                sys.stderr.write(describe(d, 'id') + '\n')
    data = record.finish('ok', policy=policy, decisions=decisions, pruned=pruned,
                         would_prune=[d['path'] for items in decisions.values() for d in items
                                      if d['action'] == 'expire'] if args.dry_run else [])
    _emit(args, data)
    return 0


def cmd_dump_keep(args):
    try:
        result = dump_retention.mark_set(args.set, _user(args), args.reason, release=args.release,
                                         check_mode=args.dry_run)
    except (EngineError, OSError) as exc:
        msg = exc.full_message() if isinstance(exc, EngineError) else str(exc)
        _say(args, 'FAILED: %s' % msg)
        return 1
    _say(args, '%s %s%s' % ('released' if args.release else 'marked', result['set'],
                            '' if result['changed'] else ' (no change)'))
    _emit(args, result)
    return 0


def _policy_flags(p):
    p.add_argument('--policy', help='the policy as JSON, e.g. {"daily": 14, "weekly": 8, "monthly": 12} or '
                                    '[{"every": "1w", "keep": 8}]')
    p.add_argument('--policy-file', dest='policy_file', help='a JSON file holding the policy')
    p.add_argument('--dry-run', dest='dry_run', action='store_true', help='show the decisions, change nothing')


def register(subparsers):
    """Add `retention`, `keep`, `dump-retention` and `dump-keep` to the pgops-backup parser."""
    p = subparsers.add_parser('retention', help='apply a calendar retention policy to pgBackRest backups')
    p.add_argument('--stanza', required=True)
    p.add_argument('--repo', type=int, help='only this repository (default: every repository)')
    _policy_flags(p)
    p.set_defaults(func=cmd_retention)

    p = subparsers.add_parser('keep', help='mark a pgBackRest backup set to keep beyond the policy (or release it)')
    p.add_argument('--stanza', required=True)
    p.add_argument('--set', required=True, help='backup label')
    p.add_argument('--repo', type=int, help='only in this repository (default: every repository holding the set)')
    p.add_argument('--reason', help='why (required to mark)')
    p.add_argument('--user', help='who asks (default: SUDO_USER or the current user)')
    p.add_argument('--release', action='store_true', help='remove the keep mark')
    p.add_argument('--dry-run', dest='dry_run', action='store_true')
    p.set_defaults(func=cmd_keep)

    p = subparsers.add_parser('dump-retention', help='apply a calendar retention policy to pg_dump sets')
    p.add_argument('--destination', required=True)
    p.add_argument('--database', dest='databases', action='append', default=[])
    _policy_flags(p)
    p.set_defaults(func=cmd_dump_retention)

    p = subparsers.add_parser('dump-keep', help='mark a pg_dump set to keep beyond the policy (or release it)')
    p.add_argument('--set', required=True, help='the dump set directory DESTINATION/DATABASE/STAMP')
    p.add_argument('--reason', help='why (required to mark)')
    p.add_argument('--user', help='who asks (default: SUDO_USER or the current user)')
    p.add_argument('--release', action='store_true', help='remove the keep mark')
    p.add_argument('--dry-run', dest='dry_run', action='store_true')
    p.set_defaults(func=cmd_dump_keep)
