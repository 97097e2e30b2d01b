# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PostgreSQL server that the engine starts, watches and verifies after a restore.

Shared by point-in-time recovery (pitr.py, recovery.py) and scratch instances (scratch.py):
server binaries of one major version, `pg_controldata`, the recovery state read over psql, the
server log read from an offset, and the wait loop that follows a recovery to its end.
Plain Python, every host interaction through a process.Runner.
"""

import datetime
import os
import re
import time

from .process import EngineError

PG_LIB = '/usr/lib/postgresql'
DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024

# Settings whose value on a hot standby must be at least the primary's (read from pg_control).
CONTROL_SETTINGS = (
    ('max_connections setting', 'max_connections'),
    ('max_worker_processes setting', 'max_worker_processes'),
    ('max_wal_senders setting', 'max_wal_senders'),
    ('max_prepared_xacts setting', 'max_prepared_transactions'),
    ('max_locks_per_xact setting', 'max_locks_per_transaction'),
)

_LSN_RE = re.compile(r'^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$')
_TS_RE = re.compile(
    r'^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6})\d*)?\s*'
    r'(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$')
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


# --- values ------------------------------------------------------------------------------------

def parse_lsn(text):
    """'0/3000050' -> 50331728."""
    match = _LSN_RE.match((text or '').strip())
    if not match:
        raise EngineError('%r is not a WAL location (LSN): expected the form 0/3000060' % text)
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(value):
    return '%X/%X' % (value >> 32, value & 0xFFFFFFFF)


def parse_timestamp(text, require_zone=False):
    """A PostgreSQL or ISO timestamp with an optional zone -> integer microseconds since the epoch.

    Accepts '2026-11-21 09:20:18.126006+00', '...+05:30', '...Z', '... UTC' (pg_waldump prints UTC
    when run with TZ=UTC). Without a zone the value is UTC unless require_zone is set.
    """
    match = _TS_RE.match(text or '')
    if not match:
        raise EngineError('%r is not a timestamp: expected e.g. 2026-05-02 14:29:59+02' % text)
    year, month, day, hour, minute, second, frac, zone = match.groups()
    if zone is None and require_zone:
        raise EngineError('the time %r has no time zone' % text,
                          hint='write it with its UTC offset, e.g. "2026-05-02 14:29:59+02" or "2026-05-02 12:29:59Z"')
    offset = 0
    if zone and zone not in ('Z', 'UTC', 'GMT'):
        sign = -1 if zone[0] == '-' else 1
        digits = zone[1:].replace(':', '')
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                                   tzinfo=datetime.timezone.utc)
    except ValueError as exc:
        raise EngineError('%r is not a valid time: %s' % (text, exc))
    micros = int((moment - EPOCH).total_seconds()) * 1000000 + int((frac or '0').ljust(6, '0'))
    return micros - offset * 1000000


def format_timestamp(micros):
    """Integer microseconds -> '2026-11-21 09:20:18.126006+00' (what pgBackRest and PostgreSQL accept)."""
    moment = EPOCH + datetime.timedelta(microseconds=micros)
    return moment.strftime('%Y-%m-%d %H:%M:%S.%f') + '+00'


def iso(micros):
    if micros is None:
        return None
    moment = EPOCH + datetime.timedelta(microseconds=micros)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


# --- binaries and pg_control ---------------------------------------------------------------------

def bindir(version):
    return '%s/%s/bin' % (PG_LIB, version)


def pg_binary(runner, version, name):
    """Absolute path of a server program of one major version (Debian/Ubuntu layout)."""
    return runner.binary(os.path.join(bindir(version), name), 'postgresql-%s' % version)


def parse_controldata(text):
    """`pg_controldata` output -> {raw label: value} plus normalized keys."""
    raw = {}
    for line in (text or '').splitlines():
        if ':' in line:
            key, value = line.split(':', 1)
            raw[key.strip()] = value.strip()
    out = {'raw': raw}
    out['system_identifier'] = raw.get('Database system identifier')
    out['state'] = raw.get('Database cluster state')
    out['wal_segment_size'] = int(raw.get('Bytes per WAL segment') or DEFAULT_WAL_SEGMENT_SIZE)
    tli = raw.get("Latest checkpoint's TimeLineID")
    out['timeline'] = int(tli) if tli and tli.isdigit() else None
    out['settings'] = dict((name, raw[label]) for label, name in CONTROL_SETTINGS if raw.get(label))
    out['data_checksums'] = (raw.get('Data page checksum version') or '0') != '0'
    return out


def controldata(runner, version, data_directory):
    result = runner.run([pg_binary(runner, version, 'pg_controldata'), data_directory], what='pg_controldata')
    return parse_controldata(result.stdout)


def path_exists(runner, path, kind='-e'):
    return runner.run(['test', kind, path], check=False).rc == 0


def directory_entries(runner, path):
    """Names in a directory (hidden ones included); None when it does not exist."""
    result = runner.run(['ls', '-A', '-1', path], check=False)
    if result.rc != 0:
        return None
    return [n for n in result.stdout.splitlines() if n]


def free_bytes(runner, path):
    """Bytes available to unprivileged users on the file system holding path (df)."""
    result = runner.run(['df', '-P', '-B1', path], what='df')
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    fields = lines[-1].split() if len(lines) > 1 else []
    if len(fields) < 4 or not fields[3].isdigit():
        raise EngineError('could not read the free space of %s from df' % path, argv=result.argv,
                          rc=result.rc, stdout=result.stdout, stderr=result.stderr)
    return int(fields[3])


# --- the server log ----------------------------------------------------------------------------

_LOG_RE = re.compile(r'(?:^|\s)(LOG|FATAL|PANIC|ERROR|WARNING|HINT|DETAIL):\s+(.*)$')
_STOP_XACT_RE = re.compile(r'^recovery stopping (before|after) (commit|abort) of transaction (\d+), time (.+)$')
_STOP_NAME_RE = re.compile(r'^recovery stopping at restore point "(.*)", time (.+)$')
_STOP_LSN_RE = re.compile(r'^recovery stopping (before|after) WAL location \(LSN\) "([0-9A-Fa-f]+/[0-9A-Fa-f]+)"')
_STOP_CONSISTENCY = 'recovery stopping after reaching consistency'
_RESTORED_RE = re.compile(r'^restored log file "([0-9A-F]{24}|[0-9A-F]{8}\.history)" from archive')
_CONSISTENT_RE = re.compile(r'^consistent recovery state reached at ([0-9A-F]+/[0-9A-F]+)')
_REDO_DONE_RE = re.compile(r'^redo done at ([0-9A-F]+/[0-9A-F]+)')
_LAST_XACT_RE = re.compile(r'^last completed transaction was at log time (.+)$')
_NEW_TLI_RE = re.compile(r'^selected new timeline ID: (\d+)')
# FATAL lines about client connections (ours, while the server starts), not about the recovery.
_CLIENT_FATALS = ('the database system is starting up', 'the database system is not yet accepting connections',
                  'the database system is not accepting connections', 'the database system is shutting down',
                  'terminating connection due to administrator command', 'role ', 'database ',
                  'no pg_hba.conf entry', 'Peer authentication failed', 'password authentication failed',
                  'the database system is in recovery mode')
_STREAMING_RE = re.compile(r'^started streaming WAL from primary at ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)')


def parse_server_log(text):
    """What a recovery wrote to the server log (lc_messages in English), as facts the engine checks."""
    events = {'stop': None, 'restored': [], 'consistent_at': None, 'redo_done_at': None,
              'last_transaction_time': None, 'new_timeline': None, 'paused': False,
              'shutdown_at_target': False, 'archive_recovery_complete': False, 'ready': False,
              'read_only_ready': False, 'streaming': None, 'fatal': [], 'lines': 0}
    for line in (text or '').splitlines():
        match = _LOG_RE.search(line)
        if not match:
            continue
        events['lines'] += 1
        level, message = match.group(1), match.group(2).strip()
        if level in ('FATAL', 'PANIC'):
            if not message.startswith(_CLIENT_FATALS):
                events['fatal'].append(message)
            continue
        if level != 'LOG':
            continue
        stop = _parse_stop(message)
        if stop:
            events['stop'] = stop
            continue
        found = _RESTORED_RE.match(message)
        if found:
            events['restored'].append(found.group(1))
            continue
        for regex, key in ((_CONSISTENT_RE, 'consistent_at'), (_REDO_DONE_RE, 'redo_done_at')):
            found = regex.match(message)
            if found:
                events[key] = found.group(1)
        found = _LAST_XACT_RE.match(message)
        if found:
            events['last_transaction_time'] = found.group(1).strip()
        found = _NEW_TLI_RE.match(message)
        if found:
            events['new_timeline'] = int(found.group(1))
        found = _STREAMING_RE.match(message)
        if found:
            events['streaming'] = {'lsn': found.group(1), 'timeline': int(found.group(2))}
        if message.startswith('pausing at the end of recovery') or message.startswith('recovery has paused'):
            events['paused'] = True
        elif message.startswith('shutdown at recovery target'):
            events['shutdown_at_target'] = True
        elif message.startswith('archive recovery complete'):
            events['archive_recovery_complete'] = True
        elif message.startswith('database system is ready to accept read-only connections'):
            events['read_only_ready'] = True
        elif message.startswith('database system is ready to accept connections'):
            events['ready'] = True
    return events


def _parse_stop(message):
    found = _STOP_XACT_RE.match(message)
    if found:
        return {'kind': 'xid', 'position': found.group(1), 'record': found.group(2),
                'xid': int(found.group(3)), 'time': found.group(4).strip(), 'message': message}
    found = _STOP_NAME_RE.match(message)
    if found:
        return {'kind': 'name', 'position': 'at', 'name': found.group(1), 'time': found.group(2).strip(),
                'message': message}
    found = _STOP_LSN_RE.match(message)
    if found:
        return {'kind': 'lsn', 'position': found.group(1), 'lsn': found.group(2), 'message': message}
    if message.startswith(_STOP_CONSISTENCY):
        return {'kind': 'consistency', 'position': 'after', 'message': message}
    return None


# --- a running (or recovering) server ------------------------------------------------------------

STATE_SQL = (
    "SELECT pg_is_in_recovery(),"
    " pg_last_wal_replay_lsn(),"
    " (extract(epoch FROM pg_last_xact_replay_timestamp()) * 1000000)::bigint,"
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,"
    " CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1),"
    " (SELECT timeline_id FROM pg_control_checkpoint()))"
    " ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,"
    " (SELECT status FROM pg_stat_wal_receiver LIMIT 1)")


def parse_state(rows):
    if not rows:
        return None
    row = rows[0] + [''] * 6
    return {
        'in_recovery': row[0] == 't',
        'replay_lsn': row[1] or None,
        'last_replay_time_us': int(row[2]) if row[2] not in ('', None) else None,
        'paused': row[3] == 't',
        'timeline': int(row[4]) if row[4] not in ('', None) else None,
        'wal_receiver': row[5] or None,
    }


class ServerProbe(object):
    """One server seen from outside: is it running (pg_ctl status), its recovery state (psql),
    and what it has logged since mark_log()."""

    def __init__(self, runner, version, data_directory, psql, log_file):
        self.runner = runner
        self.version = version
        self.data_directory = data_directory
        self.psql = psql
        self.log_file = log_file
        self._offset = 0

    def running(self):
        result = self.runner.run([pg_binary(self.runner, self.version, 'pg_ctl'), 'status', '-D',
                                  self.data_directory], check=False)
        return result.rc == 0

    def state(self):
        """The recovery state, or None while the server does not accept connections."""
        try:
            return parse_state(self.psql.rows(STATE_SQL))
        except EngineError:
            return None

    def mark_log(self):
        if not self.log_file:
            return
        result = self.runner.run(['stat', '-c', '%s', self.log_file], check=False)
        self._offset = int(result.stdout.strip()) if result.rc == 0 and result.stdout.strip().isdigit() else 0

    def log_since_mark(self):
        if not self.log_file:
            return ''
        result = self.runner.run(['tail', '-c', '+%d' % (self._offset + 1), self.log_file], check=False)
        return result.stdout if result.rc == 0 else ''


# The goals a recovery is followed to.
GOAL_PAUSED = 'paused'          # paused at the recovery target (hot standby, read-only)
GOAL_PROMOTED = 'promoted'      # out of recovery: writable
GOAL_STOPPED = 'stopped'        # shut down at the recovery target
GOAL_STANDBY = 'standby'        # consistent and following WAL as a standby


def wait_for_recovery(probe, goal, timeout, progress=None, clock=time.time, sleep=time.sleep,
                      poll=1.0, start_grace=60):
    """Follow a started server until it reaches `goal`. Raises EngineError (with the last log
    lines) when the server stops, logs FATAL, or does not get there within `timeout` seconds.

    Polls soon after the start and then less often (0.1 s growing to `poll`): a short recovery is
    seen done within a tenth of a second, a long one costs no more reads than before.

    Returns {'seconds', 'consistent_after', 'events', 'state', 'log'}.
    """
    started = clock()
    delay = min(poll, 0.1)
    consistent_after = None
    last_report = None
    seen_running = False
    log = ''
    events = parse_server_log('')
    while True:
        elapsed = clock() - started
        log = probe.log_since_mark()
        events = parse_server_log(log)
        running = probe.running()
        seen_running = seen_running or running
        state = probe.state() if running else None
        if state is not None and consistent_after is None:
            consistent_after = round(elapsed, 3)
        report = _progress_line(events, state)
        if progress and report != last_report:
            progress(report)
            last_report = report
        if goal == GOAL_STOPPED and not running and events['shutdown_at_target']:
            return _outcome(elapsed, consistent_after, events, None, log)
        if events['fatal'] and not running:
            raise EngineError('PostgreSQL stopped during recovery: %s' % events['fatal'][-1],
                              stdout=_tail(log), hint=_fatal_hint(events['fatal'][-1]))
        if not running and (seen_running or elapsed > start_grace):
            raise EngineError('PostgreSQL is not running (it stopped or never started) while recovering',
                              stdout=_tail(log), hint='read the server log %s' % (probe.log_file or ''))
        if state is not None:
            if goal == GOAL_PROMOTED and not state['in_recovery']:
                return _outcome(elapsed, consistent_after, events, state, log)
            if goal == GOAL_PAUSED and state['in_recovery'] and state['paused'] and (
                    events['stop'] or events['paused'] or not events['lines']):
                return _outcome(elapsed, consistent_after, events, state, log)
            if goal == GOAL_STANDBY and state['in_recovery']:
                return _outcome(elapsed, consistent_after, events, state, log)
            if goal in (GOAL_PAUSED, GOAL_STOPPED) and not state['in_recovery']:
                raise EngineError('PostgreSQL left recovery although it was told to stop at the target',
                                  stdout=_tail(log), hint='check recovery_target_action in postgresql.auto.conf')
        if elapsed > timeout:
            raise EngineError('recovery did not reach its goal (%s) within %d s; the server is left as it is'
                              % (goal, timeout), stdout=_tail(log),
                              hint='follow the server log (%s); last progress: %s' % (probe.log_file, report))
        sleep(delay)
        delay = min(poll, delay * 1.5)


def _outcome(elapsed, consistent_after, events, state, log):
    return {'seconds': round(elapsed, 3), 'consistent_after': consistent_after, 'events': events,
            'state': state, 'log': log}


def _progress_line(events, state):
    parts = []
    if events['restored']:
        parts.append('%d WAL files restored, last %s' % (len(events['restored']), events['restored'][-1]))
    if state is None:
        parts.append('not accepting connections yet')
    else:
        parts.append('replayed to %s' % (state['replay_lsn'] or '-'))
        if state['last_replay_time_us']:
            parts.append('last transaction %s' % iso(state['last_replay_time_us']))
        if not state['in_recovery']:
            parts.append('out of recovery')
        elif state['paused']:
            parts.append('paused')
    return ', '.join(parts)


def _tail(text, lines=30):
    return '\n'.join((text or '').splitlines()[-lines:])


def _fatal_hint(message):
    if 'recovery ended before configured recovery target was reached' in message:
        return ('the WAL needed to reach the target is not in the archive; the data directory holds the '
                'restored copy and the previous one is kept aside: choose a target inside the window')
    if 'before consistent recovery point' in message:
        return 'the target lies inside the backup itself: choose an older backup set or a later target'
    if 'insufficient parameter settings' in message or 'hot standby is not possible' in message:
        return 'raise max_connections and related settings to at least the values of the source'
    return 'read the server log'
