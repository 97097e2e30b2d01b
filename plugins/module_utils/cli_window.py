# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup window`: to which moments can each stanza be recovered right now?

Prints the recovery window of every stanza and repository (first and latest recoverable point,
WAL gaps named) and writes it as the record `recovery-window.json`, which the metrics read. The
monitoring role's timer runs it every 15 minutes; `--json` prints the record. Exit 0 when every
window was computed (gaps are findings, reported in the record and the metrics, not failures);
1 when a stanza could not be read.
"""

import json
import os
import socket
import sys

from . import clock, metrics, recovery_window
from .pgbackrest import PgBackRest
from .pgserver import iso
from .postgres import tool_user
from .process import EngineError, Runner
from .records import JobRecord, write_json_atomic
from .cli_output import say as _say

RECORD_NAME = 'recovery-window'
DEFAULT_STATE_FILE = '/var/lib/pgops-backup/window-state.json'
SECOND = 1000000


def _when(epoch):
    return iso(int(epoch * SECOND)) if epoch is not None else '-'


def describe(entry):
    """Lines a person reads for one stanza and repository."""
    where = 'stanza %s repo%s' % (entry['stanza'], entry['repo'])
    if not entry.get('ok'):
        return ['%s: window not computed: %s' % (where, entry.get('error'))]
    lines = []
    if entry['recoverable']:
        first, latest = entry['first_recoverable'], entry['latest_recoverable']
        lines.append('%s: recoverable from %s (end of backup %s) to %s (%s, segment %s): %s' % (
            where, _when(first['epoch']), first['backup'], _when(latest['epoch']), latest['bound'],
            latest['segment'], metrics.format_age(entry['window_seconds'])))
    elif entry.get('oldest_backup'):
        lines.append('%s: NOT RECOVERABLE to the newest WAL (%s): every backup is cut off by a gap' % (
            where, entry.get('newest_segment') or '-'))
    else:
        lines.append('%s: no backup to recover from' % where)
    for gap, hole in zip(entry['gaps'], entry['unrecoverable']):
        lines.append('  gap: %d segment(s) missing on timeline %d, %s..%s (%s); unrecoverable from %s to %s%s' % (
            gap['segments'], gap['timeline'], gap['first_missing'], gap['last_missing'],
            'BLOCKING: take a full backup once the cause is fixed' if gap['blocking'] else
            'a full backup was taken since it was found', _when(hole['from']), _when(hole['to']),
            ' (end of backup %s)' % hole['until_backup'] if hole['until_backup'] else ' (no backup after it)'))
    if entry.get('note'):
        lines.append('  note: %s' % entry['note'])
    return lines


def cmd_window(args):
    runner = Runner(run_as=tool_user(args.run_as))
    record = JobRecord(RECORD_NAME, args.record_dir, host=socket.getfqdn())
    state = metrics.load_state(args.state_file) if args.state_file else {}
    now = int(clock.now())
    try:
        runner.binary('pgbackrest')
    except EngineError:
        data = record.finish('skipped', reason='pgBackRest is not installed here', windows=[])
        _say(args, 'pgBackRest is not installed here: no recovery window to compute')
        if args.json:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + '\n')
        return 0
    try:
        summaries = PgBackRest(runner, config=args.config).info()
        sizes = metrics.stanza_segment_sizes(runner, now)
    except EngineError as exc:
        data = record.finish('failed', error=exc.full_message(), windows=[])
        _say(args, 'FAILED: %s' % exc.full_message())
        if args.json:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + '\n')
        return 1
    if args.stanza:
        summaries = [s for s in summaries if s['name'] in args.stanza]
    windows = recovery_window.check_host(
        lambda name: PgBackRest(runner, stanza=name, config=args.config), summaries,
        lambda name: sizes.get(name) or metrics.DEFAULT_SEGMENT_SIZE, state, now, settle=args.settle)
    failed = [w for w in windows if not w['ok']]
    data = record.finish('failed' if failed else 'ok', checked_epoch=now, windows=windows,
                         error='; '.join('%s/%s: %s' % (w['stanza'], w['repo'], w['error']) for w in failed) or None)
    if args.state_file:
        try:
            write_json_atomic(args.state_file, state, mode=0o640)
        except (IOError, OSError) as exc:
            _say(args, 'cannot save %s (gaps will look newly found): %s' % (args.state_file, exc))
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + '\n')
    elif not args.quiet:
        for entry in windows:
            for line in describe(entry):
                sys.stdout.write(line + '\n')
        if not windows:
            sys.stdout.write('no stanza\n')
    return 1 if failed else 0


def register(subparsers):
    """Add `window` to the pgops-backup parser."""
    p = subparsers.add_parser('window', help='the recovery window of every stanza and repository, WAL gaps named')
    p.add_argument('--stanza', action='append', help='only this stanza (repeat); default: every stanza')
    p.add_argument('--state-file', dest='state_file', default=DEFAULT_STATE_FILE,
                   help='remembers when each gap was first found ("" to keep none)')
    p.add_argument('--settle', type=int, default=recovery_window.SETTLE_SECONDS,
                   help='a hole whose next segment was stored less than this many seconds ago is not a gap yet '
                        '(asynchronous archiving may still fill it); 0 reports every hole at once')
    p.set_defaults(func=cmd_window)


def record_path(record_dir):
    return os.path.join(record_dir, '%s.json' % RECORD_NAME)
