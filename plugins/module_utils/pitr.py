# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point-in-time recovery: the recovery target, WAL segment arithmetic, choosing the backup set
that precedes a target, the recoverable window, and proving afterwards that recovery stopped
exactly at the target.

Pure functions and small value objects; the host work is in wal.py, recovery.py and scratch.py.
"""

import re

from .pgserver import format_lsn, format_timestamp, iso, parse_lsn, parse_timestamp
from .process import EngineError

TARGET_TYPES = ('time', 'xid', 'name', 'lsn', 'immediate', 'latest', 'standby')
ACTIONS = ('promote', 'pause', 'shutdown')
# Types that take a value, types where inclusive/exclusive means something, types with an action.
VALUED = ('time', 'xid', 'name', 'lsn')
INCLUSIVE_APPLIES = ('time', 'xid', 'lsn')
ACTION_APPLIES = ('time', 'xid', 'name', 'lsn', 'immediate')
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$')
# ASCII digits only: str.isdigit() accepts '²' and int() then fails with a traceback.
NUMBER_RE = re.compile(r'^[0-9]{1,10}$')
MAX_32 = 0xFFFFFFFF
SECOND = 1000000


class Target(object):
    """What to recover to, validated; `restore_options` are pgBackRest's spelling of it."""

    def __init__(self, kind, value=None, inclusive=True, action='promote', timeline=None):
        if kind not in TARGET_TYPES:
            raise EngineError('target type must be one of %s, not %r' % (', '.join(TARGET_TYPES), kind))
        value = None if value is None else str(value).strip()
        if kind in VALUED and not value:
            raise EngineError('a %s target needs a value' % kind)
        if kind not in VALUED and value:
            raise EngineError('a %s target takes no value (got %r)' % (kind, value))
        if not inclusive and kind not in INCLUSIVE_APPLIES:
            raise EngineError('exclusive applies to time, xid and lsn targets only, not %s' % kind)
        if action not in ACTIONS:
            raise EngineError('target action must be one of %s, not %r' % (', '.join(ACTIONS), action))
        if action != 'promote' and kind not in ACTION_APPLIES:
            raise EngineError('a %s target always ends recovery on its own; action %s needs a time, xid, '
                              'name, lsn or immediate target' % (kind, action))
        self.kind = kind
        self.inclusive = bool(inclusive)
        self.action = action
        self.timeline = _timeline(timeline)
        self.time_us = self.xid = self.lsn = self.name = None
        if kind == 'time':
            self.time_us = parse_timestamp(value, require_zone=True)
            self.value = format_timestamp(self.time_us)
        elif kind == 'xid':
            if not NUMBER_RE.match(value) or not 3 <= int(value) <= MAX_32:
                raise EngineError('%r is not a transaction id: give a number from 3 to 4294967295 in ASCII digits '
                                  '(the txid_current() or xmin of the transaction)' % value,
                                  hint='find it with pg_waldump or in the server log, e.g. pitr_xid=48151')
            self.xid = int(value)
            self.value = str(self.xid)
        elif kind == 'lsn':
            self.lsn = parse_lsn(value)
            self.value = format_lsn(self.lsn)
        elif kind == 'name':
            if not NAME_RE.match(value):
                raise EngineError('%r is not a usable restore point name: 1-63 letters, digits, _ . : -' % value)
            self.name = value
            self.value = value
        else:
            self.value = None

    def restore_options(self, action=None):
        """pgBackRest restore options; `action` overrides the target action (the engine pauses at
        the target to verify it before promoting)."""
        pgbr_type = {'latest': 'default'}.get(self.kind, self.kind)
        options = ['--type=%s' % pgbr_type]
        if self.kind in VALUED:
            options.append('--target=%s' % self.value)
        if self.kind in INCLUSIVE_APPLIES and not self.inclusive:
            options.append('--target-exclusive')
        if self.kind in ACTION_APPLIES:
            options.append('--target-action=%s' % (action or self.action))
        if self.timeline:
            options.append('--target-timeline=%s' % self.timeline)
        return options

    def describe(self):
        if self.kind == 'latest':
            text = 'the end of the archived WAL (latest)'
        elif self.kind == 'immediate':
            text = 'the end of the backup (immediate)'
        elif self.kind == 'standby':
            text = 'a standby following the archive and its primary'
        else:
            text = '%s %s' % (self.kind, self.value)
            if self.kind in INCLUSIVE_APPLIES:
                text += ' (%s)' % ('inclusive' if self.inclusive else 'exclusive')
        if self.kind in ACTION_APPLIES:
            text += ', then %s' % self.action
        if self.timeline:
            text += ', timeline %s' % self.timeline
        return text

    def as_dict(self):
        return {'type': self.kind, 'value': self.value, 'inclusive': self.inclusive, 'action': self.action,
                'timeline': self.timeline, 'description': self.describe()}


def _timeline(value):
    if value in (None, ''):
        return None
    value = str(value).strip().lower()
    if value in ('latest', 'current'):
        return value
    if NUMBER_RE.match(value) and 1 <= int(value) <= MAX_32:
        return str(int(value))
    raise EngineError('target timeline must be latest, current or a timeline number from 1 to 4294967295 in ASCII '
                      'digits, not %r' % value, hint='leave it out (latest) or read the timelines with pgbackrest info')


# --- WAL segments and timelines ------------------------------------------------------------------

class Segments(object):
    """WAL segment names for one segment size: TTTTTTTTXXXXXXXXYYYYYYYY."""

    def __init__(self, size):
        self.size = int(size)
        self.per_id = 0x100000000 // self.size

    def name(self, tli, segno):
        return '%08X%08X%08X' % (tli, segno // self.per_id, segno % self.per_id)

    def parse(self, name):
        if not name or len(name) < 24:
            raise EngineError('%r is not a WAL segment name' % name)
        return int(name[:8], 16), int(name[8:16], 16) * self.per_id + int(name[16:24], 16)

    def of_lsn(self, lsn):
        return lsn // self.size

    def start_lsn(self, segno):
        return segno * self.size

    def directory(self, name):
        """The repository directory of a segment: its first 16 characters."""
        return name[:16]


def parse_history(text):
    """A timeline history file -> [(parent_tli, switchpoint_lsn)] oldest first."""
    out = []
    for line in (text or '').splitlines():
        fields = line.strip().split(None, 2)
        if len(fields) >= 2 and fields[0].isdigit():
            out.append((int(fields[0]), parse_lsn(fields[1])))
    return out


def timeline_path(tli, history):
    """{tli: switchpoint_lsn or None} for the target timeline and its ancestors."""
    path = dict(history)
    path[tli] = None
    return path


def backup_timeline(backup):
    return int(backup['wal_start'][:8], 16)


# --- pg_waldump ----------------------------------------------------------------------------------

_WALDUMP_RE = re.compile(
    r'^rmgr:\s+(\S+)\s+len \(rec/tot\):\s+(\d+)/\s*(\d+), tx:\s+(\d+), lsn: ([0-9A-F]+/[0-9A-F]+), '
    r'prev [0-9A-F]+/[0-9A-F]+, desc: (.*)$')
_XACT_DESC_RE = re.compile(r'^(COMMIT|ABORT)(?:_PREPARED)? (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?'
                           r'(?: [A-Za-z]{1,5}|[+-]\d{2}(?::?\d{2})?)?)')
_RESTORE_POINT_RE = re.compile(r'^RESTORE_POINT (.*?)\s*$')


def parse_waldump(text):
    """`pg_waldump` lines (run with TZ=UTC) -> [{rmgr, xid, lsn, end_lsn, kind, time_us, name}]."""
    records = []
    for line in (text or '').splitlines():
        match = _WALDUMP_RE.match(line.strip())
        if not match:
            continue
        rmgr, _rec, total, xid, lsn, desc = match.groups()
        start = parse_lsn(lsn)
        record = {'rmgr': rmgr, 'xid': int(xid), 'lsn': lsn, 'end_lsn': format_lsn(start + ((int(total) + 7) & ~7)),
                  'kind': None, 'time_us': None, 'name': None}
        if rmgr == 'Transaction':
            found = _XACT_DESC_RE.match(desc)
            if found:
                record['kind'] = found.group(1).lower()
                record['time_us'] = parse_timestamp(found.group(2))
        elif rmgr == 'XLOG':
            found = _RESTORE_POINT_RE.match(desc)
            if found:
                record['kind'] = 'restore_point'
                record['name'] = found.group(1)
        records.append(record)
    return records


# --- choosing the backup set ---------------------------------------------------------------------

def usable_backups(stanza, db_id, path, segments, repo=None):
    """Backups of the current database, on the target timeline's history, whose WAL is still in
    the archive, oldest first."""
    archive_min = stanza.get('archive_min')
    min_segno = segments.parse(archive_min)[1] if archive_min else None
    out = []
    for backup in stanza['backups']:
        if backup.get('db_id') not in (None, db_id) or not backup.get('wal_start') or not backup.get('lsn_stop'):
            continue
        if repo and backup.get('repo_key') not in (None, repo):
            continue
        tli = backup_timeline(backup)
        if path is not None:
            if tli not in path:
                continue
            if path[tli] is not None and parse_lsn(backup['lsn_stop']) > path[tli]:
                continue
        if min_segno is not None and segments.parse(backup['wal_start'])[1] < min_segno:
            continue
        out.append(backup)
    out.sort(key=lambda b: (b['stop'] or 0, b['label']))
    return out


def backup_precedes(backup, time_us=None, lsn=None):
    """Whether recovery from `backup` can stop at a point: after the backup's consistency point.

    The backup's stop timestamp is whole seconds taken after pg_backup_stop returned, so every
    commit inside the backup is older than stop + 1 s; an LSN must not be before the stop LSN.
    """
    if lsn is not None:
        return parse_lsn(backup['lsn_stop']) <= lsn
    if time_us is not None:
        return (backup['stop'] + 1) * SECOND <= time_us
    return True


def choose_backup(backups, target, position, backup_set=None):
    """(backup, reason). position: {'lsn': int or None, 'time_us': int or None} of the target."""
    if not backups:
        raise EngineError('no usable backup: none of the current database on the target timeline with its WAL '
                          'still archived', hint='take a full backup (pgops.backup.pgbackrest_backup type=full)')
    lsn, time_us = position.get('lsn'), position.get('time_us')
    if backup_set:
        chosen = [b for b in backups if b['label'] == backup_set]
        if not chosen:
            raise EngineError('backup set %s is not usable for this target (usable: %s)'
                              % (backup_set, ', '.join(b['label'] for b in backups)))
        if not backup_precedes(chosen[0], time_us, lsn):
            raise EngineError('backup set %s ends after the target: recovery cannot stop before the end of '
                              'its backup' % backup_set, hint='choose an older set or leave backup_set empty')
        return chosen[0], 'requested'
    if target.kind in ('immediate', 'latest', 'standby'):
        return backups[-1], 'newest usable backup'
    if lsn is None and time_us is None:
        raise EngineError('the %s target could not be located in the archived WAL, so no backup set can be '
                          'proven to precede it' % target.kind,
                          hint='give backup_set explicitly, or increase wal_scan_segments')
    preceding = [b for b in backups if backup_precedes(b, time_us, lsn)]
    if not preceding:
        raise EngineError('the target is before the end of the oldest usable backup %s (%s)'
                          % (backups[0]['label'], describe_backup_end(backups[0])),
                          code='before-window')
    return preceding[-1], 'newest backup ending before the target'


def describe_backup_end(backup):
    return 'ended %s at LSN %s' % (iso(backup['stop'] * SECOND), backup['lsn_stop'])


def window(backups, newest_segment, newest_commit_us, end_lsn):
    """The recoverable window as people read it."""
    oldest = backups[0] if backups else None
    return {
        'from_time': iso((oldest['stop'] + 1) * SECOND) if oldest else None,
        'from_lsn': oldest['lsn_stop'] if oldest else None,
        'from_backup': oldest['label'] if oldest else None,
        'to_segment': newest_segment,
        'to_time': iso(newest_commit_us) if newest_commit_us else None,
        'to_lsn': format_lsn(end_lsn) if end_lsn is not None else None,
    }


def describe_window(win):
    return 'recoverable window: from %s (end of backup %s, LSN %s) to %s (last archived transaction; archive ends ' \
           'with segment %s, LSN %s)' % (win['from_time'], win['from_backup'], win['from_lsn'], win['to_time'] or '?',
                                         win['to_segment'], win['to_lsn'] or '?')


# --- proving the target was reached --------------------------------------------------------------

def verify_recovery(target, position, events, state):
    """Compare what the server logged and reports with the target.

    position: what preflight found about the target ({'lsn', 'end_lsn', 'time_us'}).
    Returns {'verified': bool, 'evidence': [...], 'problems': [...], 'method': 'log+sql'|'sql'}.
    """
    evidence, problems = [], []
    stop = (events or {}).get('stop')
    have_log = bool((events or {}).get('lines'))
    last_us = (state or {}).get('last_replay_time_us')
    replay_lsn = (state or {}).get('replay_lsn')
    if have_log and events.get('redo_done_at') and not stop and target.kind in ACTION_APPLIES:
        problems.append('the log shows redo finished without stopping at the target (recovered to the end of WAL)')
    kind = target.kind
    if kind == 'time':
        limit = target.time_us
        if stop:
            if stop['kind'] != 'xid' or stop['position'] != 'before':
                problems.append('recovery stopped at %r, not before the first transaction after the target' % stop['message'])
            else:
                stop_us = parse_timestamp(stop['time'])
                after = stop_us > limit if target.inclusive else stop_us >= limit
                if after:
                    evidence.append('stopped before transaction %d committed at %s, %s the target'
                                    % (stop['xid'], iso(stop_us), 'after' if target.inclusive else 'at or after'))
                else:
                    problems.append('stopped before transaction %d at %s, which is not after the target %s'
                                    % (stop['xid'], iso(stop_us), iso(limit)))
        elif have_log:
            problems.append('no "recovery stopping" line in the server log')
        if last_us is not None:
            ok = last_us <= limit if target.inclusive else last_us < limit
            (evidence if ok else problems).append('last replayed transaction at %s is %s the target %s'
                                                  % (iso(last_us), 'not after' if ok else 'AFTER', iso(limit)))
    elif kind == 'xid':
        want = 'after' if target.inclusive else 'before'
        if stop and stop['kind'] == 'xid' and stop['xid'] == target.xid and stop['position'] == want:
            evidence.append('stopped %s the %s of transaction %d' % (want, stop['record'], target.xid))
            if stop['record'] == 'abort':
                problems.append('transaction %d aborted: there is no committed state to recover to' % target.xid)
        elif stop:
            problems.append('recovery stopped at %r, not %s transaction %d' % (stop['message'], want, target.xid))
        elif have_log:
            problems.append('no "recovery stopping" line in the server log')
    elif kind == 'name':
        if stop and stop['kind'] == 'name' and stop['name'] == target.name:
            evidence.append('stopped at restore point "%s" created %s' % (target.name, stop['time']))
        elif stop:
            problems.append('recovery stopped at %r, not at restore point %s' % (stop['message'], target.name))
        elif have_log:
            problems.append('no "recovery stopping" line in the server log')
        expected = (position or {}).get('end_lsn')
        if expected and replay_lsn:
            ok = parse_lsn(replay_lsn) == parse_lsn(expected)
            (evidence if ok else problems).append('replayed up to %s, the end of the restore point record %s'
                                                  % (replay_lsn, expected))
    elif kind == 'lsn':
        if stop and stop['kind'] == 'lsn':
            stop_lsn = parse_lsn(stop['lsn'])
            want = 'after' if target.inclusive else 'before'
            if stop['position'] == want and stop_lsn >= target.lsn:
                evidence.append('stopped %s the record at %s (target %s)' % (want, stop['lsn'], target.value))
            else:
                problems.append('recovery stopped at %r, not %s %s' % (stop['message'], want, target.value))
        elif have_log:
            problems.append('no "recovery stopping" line in the server log')
        if replay_lsn and target.inclusive and parse_lsn(replay_lsn) < target.lsn:
            problems.append('replayed only up to %s, before the target %s' % (replay_lsn, target.value))
    elif kind == 'immediate':
        if stop and stop['kind'] == 'consistency':
            evidence.append('stopped as soon as the backup was consistent')
        elif have_log:
            problems.append('no "recovery stopping after reaching consistency" line in the server log')
    elif kind == 'latest':
        if stop:
            problems.append('recovery stopped at %r although no target was set' % stop['message'])
        if events and events.get('redo_done_at'):
            evidence.append('replayed every archived WAL record up to %s' % events['redo_done_at'])
        end = (position or {}).get('end_lsn')
        if end and replay_lsn and parse_lsn(replay_lsn) < parse_lsn(end):
            problems.append('replayed only up to %s, before the end of the archive %s' % (replay_lsn, end))
    if events and events.get('fatal'):
        problems.append('the server logged: %s' % events['fatal'][-1])
    if not have_log:
        evidence.append('server log not readable or not in English: checked through SQL only')
    verified = not problems and (bool(evidence) or kind == 'standby')
    return {'verified': verified, 'evidence': evidence, 'problems': problems,
            'method': 'log+sql' if have_log else 'sql'}
