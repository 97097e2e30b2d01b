# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup health: one snapshot of everything that says whether a host's backups work.

`collect` reads pgBackRest (`info --output=json`), every PostgreSQL cluster of the host
(`pg_lsclusters`, `pg_stat_archiver`, the `.ready` files in `pg_wal/archive_status`) and the job
records (pg_dump jobs, restore drills, every other job). `render` turns the snapshot into the
Prometheus text exposition format for node_exporter's textfile collector; `evaluate` compares it
with the objectives. The metrics timer, the health playbook (through a module) and the alert rules
all read the same numbers from here.

Plain Python, no Ansible imports: installed on managed hosts as part of `pgops-backup`.
"""

import glob
import json
import math
import os
import re
import tempfile
import time

from . import clock, postgres
from .pgbackrest import PgBackRest
from .process import EngineError
from .records import DEFAULT_RECORD_DIR, DUMP_RECORD_PREFIXES, write_json_atomic

DEFAULT_TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'
DEFAULT_TEXTFILE_NAME = 'pgops_backup.prom'
DEFAULT_OBJECTIVES_FILE = '/etc/pgops-backup/monitoring.json'
DEFAULT_STATE_FILE = '/var/lib/pgops-backup/metrics-state.json'
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
BACKUP_TYPES = ('full', 'diff', 'incr')

# Objectives: how old a backup, dump or drill may get, how many WAL segments may wait.
# Durations are seconds or a number with s/m/h/d/w; None, "" or "off" switches one off.
DEFAULT_OBJECTIVES = {
    'full_backup_max_age': '8d',
    'diff_backup_max_age': None,
    'incr_backup_max_age': None,
    'backup_max_age': '2h',
    'wal_ready_max': 10,
    'archive_max_age': None,
    'drill_max_age': '8d',
    'dump_max_age': '26h',
    # the recovery window: how long it must be (off by default: it depends on the retention) and how
    # fresh its computation (a blocking WAL gap always breaches); how old the last `pgbackrest verify` may be
    'window_min': None,
    'window_check_max_age': '2h',
    'verify_max_age': '8d',
}
DURATION_OBJECTIVES = ('full_backup_max_age', 'diff_backup_max_age', 'incr_backup_max_age', 'backup_max_age',
                       'archive_max_age', 'drill_max_age', 'dump_max_age', 'window_min', 'window_check_max_age',
                       'verify_max_age')
# Objectives that may name a value per dump job / drill: {"default": "26h", "weekly": "8d"}.
PER_NAME_OBJECTIVES = ('drill_max_age', 'dump_max_age')
BACKUP_AGE_OBJECTIVES = (('full', 'full_backup_max_age'), ('diff', 'diff_backup_max_age'),
                         ('incr', 'incr_backup_max_age'), ('any', 'backup_max_age'))

# Record names: `pgops-backup dump` writes pg-dump-JOB.json (pg_dump-JOB.json accepted too);
# restore drills write restore_test-NAME.json.
DRILL_PREFIXES = ('restore_test-', 'restore-test-')
# `pgops-backup window` writes recovery-window.json; `pgops-backup verify` pgbackrest-verify-STANZA[-repoN].json.
WINDOW_RECORD = 'recovery-window'
VERIFY_PREFIX = 'pgbackrest-verify-'
FAILED_STATUSES = ('failed', 'error')

_DURATION_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$')
_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_STANZA_RE = re.compile(r'--stanza[= ]["\']?([^"\'\s]+)')
_SEGMENT_RE = re.compile(r'^[0-9A-F]{24}$')

# Every metric family, in the order of the exposition: name, type, help.
FAMILIES = (
    ('pgops_backup_metrics_last_run_timestamp_seconds', 'gauge',
     'When pgops-backup metrics last collected these values (Unix time).'),
    ('pgops_backup_metrics_duration_seconds', 'gauge', 'How long the collection took.'),
    ('pgops_backup_collector_success', 'gauge',
     'Whether reading a source worked (1) or failed (0): pgbackrest, postgres, records.'),
    ('pgops_backup_stanza_status_code', 'gauge',
     'pgBackRest status code of the stanza: 0 ok, 1 missing stanza path, 2 no valid backups, '
     '3 missing stanza data, 4 different across repos, 5 database mismatch, 6 requested backup not found, 99 other.'),
    ('pgops_backup_stanza_backup_running', 'gauge', 'Whether a backup of the stanza holds the lock now.'),
    ('pgops_backup_repo_status_code', 'gauge', 'pgBackRest status code of the stanza in one repository (0 ok).'),
    ('pgops_backup_backups', 'gauge', 'Number of backups of the stanza in the repository.'),
    ('pgops_backup_last_backup_timestamp_seconds', 'gauge',
     'When the newest backup of the type (full, diff, incr; any: the newest of all) finished (Unix time).'),
    ('pgops_backup_last_backup_age_seconds', 'gauge', 'Seconds since the newest backup of the type finished.'),
    ('pgops_backup_last_backup_duration_seconds', 'gauge', 'How long the newest backup of the type took.'),
    ('pgops_backup_last_backup_size_bytes', 'gauge', 'Database size covered by the newest backup of the type.'),
    ('pgops_backup_last_backup_repo_size_bytes', 'gauge',
     'Size of the newest backup of the type in the repository (compressed, without the backups it references).'),
    ('pgops_backup_last_backup_max_age_seconds', 'gauge',
     'Objective: the newest backup of the type must be younger than this.'),
    ('pgops_backup_archive_info', 'gauge',
     'WAL archive range of the stanza in the repository: first and last archived segment (labels min, max).'),
    ('pgops_backup_archive_max_lsn_bytes', 'gauge',
     'WAL position (bytes) at the end of the newest archived segment of the current database.'),
    ('pgops_backup_postgres_up', 'gauge', 'Whether the PostgreSQL cluster answered.'),
    ('pgops_backup_postgres_in_recovery', 'gauge', 'Whether the cluster is a standby (in recovery).'),
    ('pgops_backup_postgres_current_lsn_bytes', 'gauge', 'Current WAL write position of a primary (bytes).'),
    ('pgops_backup_archiver_enabled', 'gauge', 'Whether archive_mode is on (or always).'),
    ('pgops_backup_archiver_archived_total', 'counter',
     'WAL files archived successfully (pg_stat_archiver.archived_count).'),
    ('pgops_backup_archiver_failed_total', 'counter',
     'Failed attempts to archive WAL files (pg_stat_archiver.failed_count).'),
    ('pgops_backup_archiver_last_archived_timestamp_seconds', 'gauge',
     'When the last WAL file was archived (Unix time).'),
    ('pgops_backup_archiver_last_archived_age_seconds', 'gauge', 'Seconds since the last WAL file was archived.'),
    ('pgops_backup_archiver_last_archived_max_age_seconds', 'gauge',
     'Objective: a WAL file must have been archived within this many seconds.'),
    ('pgops_backup_archiver_last_failed_timestamp_seconds', 'gauge',
     'When archiving a WAL file last failed (Unix time).'),
    ('pgops_backup_archiver_failing', 'gauge',
     'Whether the most recent archive attempt failed (last failure newer than the last success).'),
    ('pgops_backup_wal_ready_segments', 'gauge',
     'WAL files waiting to be archived: archive_status/*.ready in the cluster\'s pg_wal.'),
    ('pgops_backup_wal_ready_oldest_age_seconds', 'gauge', 'Age of the oldest WAL file waiting to be archived.'),
    ('pgops_backup_wal_ready_max_segments', 'gauge', 'Objective: at most this many WAL files may wait.'),
    ('pgops_backup_dump_last_success_timestamp_seconds', 'gauge',
     'When the pg_dump job last succeeded (Unix time).'),
    ('pgops_backup_dump_last_success_age_seconds', 'gauge', 'Seconds since the pg_dump job last succeeded.'),
    ('pgops_backup_dump_last_success_size_bytes', 'gauge', 'Bytes written by the last successful run of the job.'),
    ('pgops_backup_dump_last_success_duration_seconds', 'gauge', 'How long the last successful run took.'),
    ('pgops_backup_dump_last_failed', 'gauge', 'Whether the last run of the pg_dump job failed.'),
    ('pgops_backup_dump_max_age_seconds', 'gauge', 'Objective: the job must have succeeded within this many seconds.'),
    ('pgops_backup_drill_last_success', 'gauge', 'Result of the last restore drill: 0 failed, 1 passed (or skipped).'),
    ('pgops_backup_drill_last_run_timestamp_seconds', 'gauge', 'When the last restore drill finished (Unix time).'),
    ('pgops_backup_drill_last_run_age_seconds', 'gauge', 'Seconds since the last restore drill finished.'),
    ('pgops_backup_drill_last_duration_seconds', 'gauge', 'How long the last restore drill took.'),
    ('pgops_backup_drill_last_success_age_seconds', 'gauge', 'Seconds since a restore drill last passed.'),
    ('pgops_backup_drill_max_age_seconds', 'gauge', 'Objective: a drill must have passed within this many seconds.'),
    ('pgops_backup_window_check_timestamp_seconds', 'gauge',
     'When `pgops-backup window` last computed the recovery window (Unix time).'),
    ('pgops_backup_window_check_age_seconds', 'gauge', 'Seconds since the recovery window was last computed.'),
    ('pgops_backup_window_check_max_age_seconds', 'gauge',
     'Objective: the recovery window must have been computed within this many seconds.'),
    ('pgops_backup_window_check_success', 'gauge',
     'Whether the recovery window of the stanza in the repository could be computed (1) or not (0).'),
    ('pgops_backup_window_recoverable', 'gauge',
     'Whether the newest archived WAL can be reached from a backup (1) or a gap after every backup prevents it (0).'),
    ('pgops_backup_window_first_recoverable_timestamp_seconds', 'gauge',
     'First recoverable point: end of the oldest backup with continuous WAL up to the newest archived segment.'),
    ('pgops_backup_window_latest_recoverable_timestamp_seconds', 'gauge',
     'Latest recoverable point: last commit in the newest archived WAL (or the newest backup end when later).'),
    ('pgops_backup_window_seconds', 'gauge', 'Length of the recovery window (latest - first recoverable point).'),
    ('pgops_backup_window_min_seconds', 'gauge', 'Objective: the recovery window must be at least this long.'),
    ('pgops_backup_window_unrecoverable_seconds', 'gauge',
     'Time between the oldest backup and the first recoverable point that no backup can recover to (WAL gaps).'),
    ('pgops_backup_wal_missing_segments', 'gauge',
     'WAL segments missing from the archive between the oldest backup and the newest archived segment.'),
    ('pgops_backup_wal_gaps', 'gauge', 'Runs of consecutive missing WAL segments (gaps) in that range.'),
    ('pgops_backup_wal_gaps_blocking', 'gauge',
     'Gaps not yet followed by a full backup taken after the gap was found.'),
    ('pgops_backup_wal_gap_info', 'gauge',
     'One gap: timeline, first and last missing segment, whether it still blocks (labels).'),
    ('pgops_backup_verify_last_failed', 'gauge', 'Whether the last `pgbackrest verify` of the stanza failed.'),
    ('pgops_backup_verify_last_run_timestamp_seconds', 'gauge', 'When `pgbackrest verify` last finished (Unix time).'),
    ('pgops_backup_verify_last_run_age_seconds', 'gauge', 'Seconds since `pgbackrest verify` last finished.'),
    ('pgops_backup_verify_last_duration_seconds', 'gauge', 'How long the last `pgbackrest verify` took.'),
    ('pgops_backup_verify_max_age_seconds', 'gauge', 'Objective: verify must have run within this many seconds.'),
    ('pgops_backup_job_last_run_timestamp_seconds', 'gauge', 'When the job (its record) last finished (Unix time).'),
    ('pgops_backup_job_last_duration_seconds', 'gauge', 'How long the last run of the job took.'),
    ('pgops_backup_job_last_failed', 'gauge', 'Whether the last run of the job failed (skipped runs did not fail).'),
)
FAMILY_NAMES = tuple(f[0] for f in FAMILIES)


# ---------------------------------------------------------------------------------------------
# Objectives

def parse_duration(value):
    """'8d' -> 691200, 90 -> 90; None, '', 0, 'off' -> None (no objective)."""
    if value is None or value is False:
        return None
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    text = str(value).strip().lower()
    if text in ('', 'off', 'none', 'null', '0'):
        return None
    match = _DURATION_RE.match(text)
    if not match:
        raise EngineError('%r is not a duration: use seconds or a number with s, m, h, d or w (e.g. 26h)' % (value,))
    seconds = int(float(match.group(1)) * _UNITS[match.group(2)])
    return seconds or None


def parse_count(value):
    if value is None or value is False:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip().lower()
    if text in ('', 'off', 'none', 'null'):
        return None
    try:
        return int(text)
    except ValueError:
        raise EngineError('%r is not a count' % (value,))


def normalize_objectives(raw=None):
    """Merge objectives over DEFAULT_OBJECTIVES; durations become seconds (or None: off)."""
    merged = dict(DEFAULT_OBJECTIVES)
    unknown = sorted(set(raw or {}) - set(DEFAULT_OBJECTIVES))
    if unknown:
        raise EngineError('unknown objective(s): %s' % ', '.join(unknown),
                          hint='known objectives: %s' % ', '.join(sorted(DEFAULT_OBJECTIVES)))
    merged.update(raw or {})
    out = {}
    for key, value in merged.items():
        if key in PER_NAME_OBJECTIVES and isinstance(value, dict):
            out[key] = dict((str(k), parse_duration(v)) for k, v in value.items())
            out[key].setdefault('default', parse_duration(DEFAULT_OBJECTIVES[key]))
        elif key in DURATION_OBJECTIVES:
            out[key] = parse_duration(value)
        else:
            out[key] = parse_count(value)
    return out


def objective_for(objectives, key, name=None):
    """The objective `key`, or its value for one dump job / drill when given per name."""
    value = objectives.get(key)
    if isinstance(value, dict):
        return value.get(name, value.get('default'))
    return value


def load_json_file(path, default=None):
    """A JSON file, or `default` when it does not exist."""
    if not path or not os.path.exists(path):
        return default
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise EngineError('cannot read %s: %s' % (path, exc))


def load_objectives(path=DEFAULT_OBJECTIVES_FILE, overrides=None):
    """Objectives from the file the monitoring role writes, then `overrides`, over the defaults."""
    raw = load_json_file(path, {}) or {}
    if not isinstance(raw, dict):
        raise EngineError('%s must hold a JSON object of objectives' % path)
    raw = dict(raw)
    raw.update(overrides or {})
    return normalize_objectives(raw)


# ---------------------------------------------------------------------------------------------
# Small helpers

def _age(now, timestamp):
    if timestamp is None:
        return None
    return max(0, int(now) - int(timestamp))


def _int(text):
    try:
        return int(text) if text not in (None, '') else None
    except (TypeError, ValueError):
        return None


def segment_end_bytes(segment, segment_size=DEFAULT_SEGMENT_SIZE):
    """WAL position at the end of segment TTTTTTTTLLLLLLLLSSSSSSSS (bytes since 0/0)."""
    if not segment or not _SEGMENT_RE.match(segment):
        return None
    log, seg = int(segment[8:16], 16), int(segment[16:24], 16)
    return log * 0x100000000 + (seg + 1) * segment_size


def stanza_of_archive_command(command):
    match = _STANZA_RE.search(command or '')
    return match.group(1) if match else None


def count_ready(data_directory, now):
    """(.ready files in pg_wal/archive_status, age of the oldest) of a data directory."""
    wal_dir = 'pg_xlog' if os.path.isdir(os.path.join(data_directory, 'pg_xlog')) else 'pg_wal'
    status_dir = os.path.join(data_directory, wal_dir, 'archive_status')
    names = [n for n in os.listdir(status_dir) if n.endswith('.ready')]
    oldest = None
    for name in names:
        try:
            mtime = os.stat(os.path.join(status_dir, name)).st_mtime
        except OSError:
            continue  # archived between listdir and stat
        oldest = mtime if oldest is None else min(oldest, mtime)
    return len(names), (_age(now, oldest) if oldest is not None else 0)


def format_age(seconds):
    """3725 -> '1h 02m': ages as a person reads them in the health table."""
    if seconds is None:
        return '-'
    seconds = int(seconds)
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm %02ds' % (seconds // 60, seconds % 60)
    if seconds < 86400:
        return '%dh %02dm' % (seconds // 3600, seconds % 3600 // 60)
    return '%dd %02dh' % (seconds // 86400, seconds % 86400 // 3600)


# ---------------------------------------------------------------------------------------------
# Collection

ARCHIVER_SQL = (
    "SELECT pg_is_in_recovery(), current_setting('archive_mode'), current_setting('archive_command'), "
    "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'), "
    "archived_count, last_archived_wal, floor(extract(epoch FROM last_archived_time))::bigint, "
    "failed_count, last_failed_wal, floor(extract(epoch FROM last_failed_time))::bigint, "
    "coalesce(last_failed_time > last_archived_time, last_failed_time IS NOT NULL), "
    "CASE WHEN pg_is_in_recovery() THEN NULL ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint END "
    "FROM pg_stat_archiver")


def _collect_postgres(snap, runner, now):
    status = {'ok': True, 'error': None}
    try:
        runner.binary('pg_lsclusters', 'postgresql-common')
    except EngineError:
        snap['collectors']['postgres'] = {'ok': None, 'error': 'pg_lsclusters not found: no PostgreSQL here'}
        return
    errors = []
    try:
        clusters = postgres.list_clusters(runner)
    except EngineError as exc:
        snap['collectors']['postgres'] = {'ok': False, 'error': exc.full_message()}
        return
    for cluster in clusters:
        entry = {
            'cluster': '%s/%s' % (cluster['version'], cluster['name']), 'port': cluster['port'],
            'data_directory': cluster['data_directory'], 'stanza': None,
            'up': False, 'in_recovery': None, 'archive_mode': None, 'archiver_enabled': None,
            'segment_size': None, 'archived_count': None, 'last_archived_wal': None,
            'last_archived_time': None, 'last_archived_age': None, 'failed_count': None,
            'last_failed_wal': None, 'last_failed_time': None, 'failing': None, 'current_lsn_bytes': None,
            'wal_ready': None, 'wal_ready_oldest_age': None, 'error': None,
        }
        if cluster['status'].startswith('online'):
            try:
                rows = postgres.Psql(runner, port=cluster['port']).rows(ARCHIVER_SQL)
                (recovery, mode, command, seg_size, archived, last_wal, last_time, failed, failed_wal,
                 failed_time, failing, lsn) = rows[0]
                entry.update({
                    'up': True, 'in_recovery': recovery == 't', 'archive_mode': mode,
                    'archiver_enabled': mode in ('on', 'always'), 'stanza': stanza_of_archive_command(command),
                    'segment_size': _int(seg_size), 'archived_count': _int(archived),
                    'last_archived_wal': last_wal or None, 'last_archived_time': _int(last_time),
                    'failed_count': _int(failed), 'last_failed_wal': failed_wal or None,
                    'last_failed_time': _int(failed_time), 'failing': failing == 't',
                    'current_lsn_bytes': _int(lsn),
                })
                entry['last_archived_age'] = _age(now, entry['last_archived_time'])
            except (EngineError, IndexError, ValueError) as exc:
                entry['error'] = exc.full_message() if isinstance(exc, EngineError) else 'unexpected psql output'
                errors.append('%s: %s' % (entry['cluster'], entry['error']))
        try:
            entry['wal_ready'], entry['wal_ready_oldest_age'] = count_ready(cluster['data_directory'], now)
        except OSError as exc:
            errors.append('%s: cannot read archive_status: %s' % (entry['cluster'], exc))
        snap['clusters'].append(entry)
    if errors:
        status = {'ok': False, 'error': '; '.join(errors)}
    snap['collectors']['postgres'] = status


def stanza_segment_sizes(runner, now=None):
    """{stanza: WAL segment size} of the clusters of this host that archive to a stanza."""
    snap = {'collectors': {}, 'clusters': []}
    _collect_postgres(snap, runner, int(clock.now() if now is None else now))
    return dict((c['stanza'], c['segment_size']) for c in snap['clusters'] if c['stanza'] and c['segment_size'])


def _last_of(backups, kind):
    of_kind = [b for b in backups if kind == 'any' or b['type'] == kind]
    return of_kind[-1] if of_kind else None


def _archive_db(archive):
    try:
        return int(str(archive.get('id')).rsplit('-', 1)[1])
    except (IndexError, ValueError):
        return 0


def _collect_pgbackrest(snap, runner, now, config=None, stanzas=None):
    try:
        runner.binary('pgbackrest')
    except EngineError:
        snap['collectors']['pgbackrest'] = {'ok': None, 'error': 'pgbackrest not found: not installed here'}
        return
    try:
        summaries = PgBackRest(runner, config=config).info()
    except EngineError as exc:
        snap['collectors']['pgbackrest'] = {'ok': False, 'error': exc.full_message()}
        return
    snap['collectors']['pgbackrest'] = {'ok': True, 'error': None}
    seg_sizes = dict((c['stanza'], c['segment_size']) for c in snap['clusters'] if c['stanza'] and c['segment_size'])
    for summary in summaries:
        if stanzas and summary['name'] not in stanzas:
            continue
        stanza = {'name': summary['name'], 'status_code': summary['status_code'],
                  'status_message': summary['status_message'], 'backup_running': summary['backup_running'],
                  'repos': []}
        keys = [r['key'] for r in summary['repos']] or sorted(
            set(b['repo_key'] for b in summary['backups'] if b['repo_key'] is not None)) or [1]
        repo_status = dict((r['key'], r) for r in summary['repos'])
        for key in keys:
            backups = [b for b in summary['backups'] if b['repo_key'] in (key, None)]
            repo = {'key': key, 'status_code': (repo_status.get(key) or {}).get('status_code'),
                    'status_message': (repo_status.get(key) or {}).get('status_message'),
                    'backup_count': len(backups), 'last': {}, 'archives': []}
            for kind in BACKUP_TYPES + ('any',):
                last = _last_of(backups, kind)
                repo['last'][kind] = None if last is None else {
                    'label': last['label'], 'type': last['type'], 'stop': last['stop'],
                    'age': _age(now, last['stop']), 'duration': last['duration_seconds'],
                    'size': last['size'],
                    # What this backup itself stored (the help text's meaning); reported with bundling too.
                    'repo_size': last['repo_delta'] if last.get('repo_delta') is not None else last['repo_size']}
            archives = [a for a in summary['archive'] if a['repo_key'] in (key, None)]
            for arch in archives:
                repo['archives'].append({'id': arch['id'], 'min': arch['min'], 'max': arch['max']})
            current = sorted((a for a in archives if a['max']), key=_archive_db)
            repo['archive_max_lsn_bytes'] = segment_end_bytes(
                current[-1]['max'], seg_sizes.get(summary['name']) or DEFAULT_SEGMENT_SIZE) if current else None
            stanza['repos'].append(repo)
        snap['stanzas'].append(stanza)


def record_kind(name, data):
    """('dump', JOB), ('prune', JOB), ('drill', NAME) or ('job', NAME) for a record file name and its content."""
    for prefix in DUMP_RECORD_PREFIXES:
        if name.startswith(prefix):
            # restore-dump records share the prefix: they name a source, dumps a destination.
            if 'source' in data:
                return 'job', name
            # `dump --prune-only` overwrites the job's record: its last dump is only in the state.
            return ('dump' if data.get('mode', 'dump') == 'dump' else 'prune'), name[len(prefix):]
    for prefix in DRILL_PREFIXES:
        if name.startswith(prefix):
            return 'drill', name[len(prefix):]
    return 'job', name


def _window_of(data, now):
    """The parts of the `pgops-backup window` record the metrics and the health table use."""
    checked = _int(data.get('checked_epoch') or data.get('finished_epoch'))
    return {'checked_epoch': checked, 'age': _age(now, checked), 'status': data.get('status'),
            'error': data.get('error'), 'windows': [w for w in data.get('windows') or [] if isinstance(w, dict)]}


def _collect_records(snap, record_dir, state, now):
    errors = []
    if not os.path.isdir(record_dir):
        snap['collectors']['records'] = {'ok': True, 'error': None}
        return
    for path in sorted(glob.glob(os.path.join(record_dir, '*.json'))):
        name = os.path.basename(path)[:-len('.json')]
        try:
            with open(path) as handle:
                data = json.load(handle)
        except (IOError, OSError, ValueError) as exc:
            errors.append('%s: %s' % (os.path.basename(path), exc))
            continue
        if not isinstance(data, dict):
            errors.append('%s: not a JSON object' % os.path.basename(path))
            continue
        status = data.get('status')
        finished = _int(data.get('finished_epoch'))
        failed = status in FAILED_STATUSES
        duration = data.get('duration_seconds')
        snap['jobs'].append({'record': name, 'status': status, 'finished_epoch': finished,
                             'duration_seconds': duration, 'failed': failed})
        if name == WINDOW_RECORD:
            snap['window'] = _window_of(data, now)
            continue
        if name.startswith(VERIFY_PREFIX):
            snap['verify'].append({'record': name, 'stanza': data.get('stanza') or name[len(VERIFY_PREFIX):],
                                   'repo': data.get('repo'), 'failed': failed, 'finished_epoch': finished,
                                   'age': _age(now, finished), 'duration_seconds': duration})
            continue
        kind, label = record_kind(name, data)
        if kind == 'job' or (kind == 'prune' and 'dump:%s' % label not in state):
            continue
        if kind == 'prune':
            kind, status, failed, finished, duration = 'dump', None, False, None, None
        key = '%s:%s' % (kind, label)
        if status == 'ok' and finished is not None:
            known = state.get(key) or {}
            if (known.get('finished_epoch') or 0) <= finished:
                state[key] = {'finished_epoch': finished, 'duration_seconds': duration,
                              'size_bytes': data.get('size_bytes')}
        success = state.get(key) or {}
        entry = {'name': label, 'record': name, 'status': status, 'failed': failed,
                 'finished_epoch': finished, 'age': _age(now, finished), 'duration_seconds': duration,
                 'last_success_epoch': success.get('finished_epoch'),
                 'last_success_age': _age(now, success.get('finished_epoch')),
                 'last_success_size_bytes': success.get('size_bytes'),
                 'last_success_duration_seconds': success.get('duration_seconds')}
        snap['dumps' if kind == 'dump' else 'drills'].append(entry)
    snap['collectors']['records'] = {'ok': not errors, 'error': '; '.join(errors) or None}


def collect(runner, record_dir=DEFAULT_RECORD_DIR, objectives=None, state=None, now=None, config=None,
            stanzas=None):
    """One snapshot of the host's backup health (plain data: JSON-serialisable).

    runner: a process.Runner (running pgbackrest and psql as the cluster owner)
    objectives: normalised objectives (normalize_objectives); defaults when None
    state: dict of last successes by 'dump:JOB' / 'drill:NAME', updated in place
    """
    started = time.time()
    now = int(clock.now() if now is None else now)
    snap = {'timestamp': now, 'objectives': objectives or normalize_objectives(), 'collectors': {},
            'stanzas': [], 'clusters': [], 'jobs': [], 'dumps': [], 'drills': [], 'window': None, 'verify': []}
    state = {} if state is None else state
    _collect_postgres(snap, runner, now)
    _collect_pgbackrest(snap, runner, now, config=config, stanzas=stanzas)
    _collect_records(snap, record_dir, state, now)
    snap['duration_seconds'] = round(time.time() - started, 3)
    return snap


# ---------------------------------------------------------------------------------------------
# Exposition

def escape_label(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def escape_help(text):
    return text.replace('\\', '\\\\').replace('\n', '\\n')


def format_value(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return 'NaN'
    if value in (float('inf'), float('-inf')):
        return '+Inf' if value > 0 else '-Inf'
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Exposition(object):
    """Samples grouped by family, rendered in FAMILIES order with HELP and TYPE."""

    def __init__(self):
        self.samples = dict((name, []) for name in FAMILY_NAMES)

    def add(self, name, labels, value):
        if value is None:
            return
        self.samples[name].append((tuple(labels), value))

    def render(self):
        lines = []
        for name, kind, help_text in FAMILIES:
            samples = self.samples[name]
            if not samples:
                continue
            lines.append('# HELP %s %s' % (name, escape_help(help_text)))
            lines.append('# TYPE %s %s' % (name, kind))
            for labels, value in samples:
                label_text = ','.join('%s="%s"' % (k, escape_label(v)) for k, v in labels)
                lines.append('%s%s %s' % (name, '{%s}' % label_text if label_text else '', format_value(value)))
        return '\n'.join(lines) + '\n'


def _collector_samples(out, snap):
    out.add('pgops_backup_metrics_last_run_timestamp_seconds', (), snap['timestamp'])
    out.add('pgops_backup_metrics_duration_seconds', (), snap.get('duration_seconds'))
    for source in ('pgbackrest', 'postgres', 'records'):
        status = snap['collectors'].get(source) or {}
        if status.get('ok') is not None:
            out.add('pgops_backup_collector_success', (('source', source),), status['ok'])


def _stanza_samples(out, snap):
    objectives = snap['objectives']
    for stanza in snap['stanzas']:
        s = (('stanza', stanza['name']),)
        out.add('pgops_backup_stanza_status_code', s, stanza['status_code'])
        out.add('pgops_backup_stanza_backup_running', s, stanza['backup_running'])
        for repo in stanza['repos']:
            r = s + (('repo', str(repo['key'])),)
            out.add('pgops_backup_repo_status_code', r, repo['status_code'])
            out.add('pgops_backup_backups', r, repo['backup_count'])
            for kind in BACKUP_TYPES + ('any',):
                last = repo['last'].get(kind)
                t = r + (('type', kind),)
                if last:
                    out.add('pgops_backup_last_backup_timestamp_seconds', t, last['stop'])
                    out.add('pgops_backup_last_backup_age_seconds', t, last['age'])
                    out.add('pgops_backup_last_backup_duration_seconds', t, last['duration'])
                    out.add('pgops_backup_last_backup_size_bytes', t, last['size'])
                    out.add('pgops_backup_last_backup_repo_size_bytes', t, last['repo_size'])
            for kind, key in BACKUP_AGE_OBJECTIVES:
                out.add('pgops_backup_last_backup_max_age_seconds', r + (('type', kind),), objectives.get(key))
            for arch in repo['archives']:
                out.add('pgops_backup_archive_info', r + (('archive_id', arch['id']), ('min', arch['min'] or ''),
                                                          ('max', arch['max'] or '')), 1)
            out.add('pgops_backup_archive_max_lsn_bytes', r, repo['archive_max_lsn_bytes'])


def _cluster_samples(out, snap):
    objectives = snap['objectives']
    for c in snap['clusters']:
        labels = (('stanza', c['stanza'] or ''), ('cluster', c['cluster']))
        out.add('pgops_backup_postgres_up', labels, c['up'])
        out.add('pgops_backup_postgres_in_recovery', labels, c['in_recovery'])
        out.add('pgops_backup_postgres_current_lsn_bytes', labels, c['current_lsn_bytes'])
        out.add('pgops_backup_archiver_enabled', labels, c['archiver_enabled'])
        out.add('pgops_backup_archiver_archived_total', labels, c['archived_count'])
        out.add('pgops_backup_archiver_failed_total', labels, c['failed_count'])
        out.add('pgops_backup_archiver_last_archived_timestamp_seconds', labels, c['last_archived_time'])
        out.add('pgops_backup_archiver_last_archived_age_seconds', labels, c['last_archived_age'])
        if c['archiver_enabled']:
            out.add('pgops_backup_archiver_last_archived_max_age_seconds', labels, objectives.get('archive_max_age'))
        out.add('pgops_backup_archiver_last_failed_timestamp_seconds', labels, c['last_failed_time'])
        out.add('pgops_backup_archiver_failing', labels, c['failing'])
        out.add('pgops_backup_wal_ready_segments', labels, c['wal_ready'])
        out.add('pgops_backup_wal_ready_oldest_age_seconds', labels, c['wal_ready_oldest_age'])
        if c['wal_ready'] is not None:
            out.add('pgops_backup_wal_ready_max_segments', labels, objectives.get('wal_ready_max'))


def _record_samples(out, snap):
    objectives = snap['objectives']
    for d in snap['dumps']:
        labels = (('dump', d['name']),)
        out.add('pgops_backup_dump_last_success_timestamp_seconds', labels, d['last_success_epoch'])
        out.add('pgops_backup_dump_last_success_age_seconds', labels, d['last_success_age'])
        out.add('pgops_backup_dump_last_success_size_bytes', labels, d['last_success_size_bytes'])
        out.add('pgops_backup_dump_last_success_duration_seconds', labels, d['last_success_duration_seconds'])
        out.add('pgops_backup_dump_last_failed', labels, d['failed'])
        out.add('pgops_backup_dump_max_age_seconds', labels, objective_for(objectives, 'dump_max_age', d['name']))
    for d in snap['drills']:
        labels = (('drill', d['name']),)
        out.add('pgops_backup_drill_last_success', labels, not d['failed'])
        out.add('pgops_backup_drill_last_run_timestamp_seconds', labels, d['finished_epoch'])
        out.add('pgops_backup_drill_last_run_age_seconds', labels, d['age'])
        out.add('pgops_backup_drill_last_duration_seconds', labels, d['duration_seconds'])
        out.add('pgops_backup_drill_last_success_age_seconds', labels, d['last_success_age'])
        out.add('pgops_backup_drill_max_age_seconds', labels, objective_for(objectives, 'drill_max_age', d['name']))
    for job in snap['jobs']:
        labels = (('record', job['record']),)
        out.add('pgops_backup_job_last_run_timestamp_seconds', labels, job['finished_epoch'])
        out.add('pgops_backup_job_last_duration_seconds', labels, job['duration_seconds'])
        out.add('pgops_backup_job_last_failed', labels, job['failed'])


def _window_samples(out, snap):
    objectives = snap['objectives']
    window = snap.get('window')
    if window:
        out.add('pgops_backup_window_check_timestamp_seconds', (), window['checked_epoch'])
        out.add('pgops_backup_window_check_age_seconds', (), window['age'])
        out.add('pgops_backup_window_check_max_age_seconds', (), objectives.get('window_check_max_age'))
        for w in window['windows']:
            r = (('stanza', w.get('stanza') or ''), ('repo', str(w.get('repo') or '')))
            out.add('pgops_backup_window_check_success', r, bool(w.get('ok')))
            if not w.get('ok'):
                continue
            out.add('pgops_backup_window_recoverable', r, bool(w.get('recoverable')))
            out.add('pgops_backup_window_first_recoverable_timestamp_seconds', r,
                    (w.get('first_recoverable') or {}).get('epoch'))
            out.add('pgops_backup_window_latest_recoverable_timestamp_seconds', r,
                    (w.get('latest_recoverable') or {}).get('epoch'))
            out.add('pgops_backup_window_seconds', r, w.get('window_seconds'))
            out.add('pgops_backup_window_min_seconds', r, objectives.get('window_min'))
            out.add('pgops_backup_window_unrecoverable_seconds', r, w.get('unrecoverable_seconds'))
            gaps = w.get('gaps') or []
            out.add('pgops_backup_wal_missing_segments', r, w.get('missing_segments'))
            out.add('pgops_backup_wal_gaps', r, len(gaps))
            out.add('pgops_backup_wal_gaps_blocking', r, sum(1 for g in gaps if g.get('blocking')))
            for g in gaps:
                out.add('pgops_backup_wal_gap_info', r + (
                    ('timeline', str(g.get('timeline'))), ('first_missing', g.get('first_missing') or ''),
                    ('last_missing', g.get('last_missing') or ''), ('blocking', '1' if g.get('blocking') else '0')), 1)
    for v in snap.get('verify') or []:
        r = (('stanza', v['stanza']), ('repo', str(v['repo'] or '')))
        out.add('pgops_backup_verify_last_failed', r, v['failed'])
        out.add('pgops_backup_verify_last_run_timestamp_seconds', r, v['finished_epoch'])
        out.add('pgops_backup_verify_last_run_age_seconds', r, v['age'])
        out.add('pgops_backup_verify_last_duration_seconds', r, v['duration_seconds'])
        out.add('pgops_backup_verify_max_age_seconds', r, objectives.get('verify_max_age'))


def render(snap):
    """The snapshot in the Prometheus text exposition format (version 0.0.4)."""
    out = Exposition()
    _collector_samples(out, snap)
    _stanza_samples(out, snap)
    _cluster_samples(out, snap)
    _window_samples(out, snap)
    _record_samples(out, snap)
    return out.render()


def write_textfile(directory, text, name=DEFAULT_TEXTFILE_NAME, mode=0o644):
    """Write the exposition next to its final name and rename it into place. The temporary name
    does not end in .prom, so node_exporter never reads a partial file."""
    path = os.path.join(directory, name)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_state(path):
    try:
        state = load_json_file(path, {})
    except EngineError:
        return {}  # a damaged state file only costs the memory of older successes
    return state if isinstance(state, dict) else {}


def save_state(path, state):
    write_json_atomic(path, state, mode=0o640)


# ---------------------------------------------------------------------------------------------
# Objectives evaluated: the health playbook's verdict (the alert rules say the same in PromQL)

def _breach(objective, subject, message, value=None, limit=None):
    return {'objective': objective, 'subject': subject, 'message': message, 'value': value, 'limit': limit}


def evaluate(snap):
    """Every objective the snapshot breaches, as dicts with objective, subject and message."""
    objectives = snap['objectives']
    found = []
    for source, status in sorted(snap['collectors'].items()):
        if status.get('ok') is False:
            found.append(_breach('collector', source, 'reading %s failed: %s' % (source, status.get('error'))))
    for stanza in snap['stanzas']:
        name = stanza['name']
        if stanza['status_code'] != 0:
            found.append(_breach('stanza_status', name, 'stanza %s: %s (status %s)' % (
                name, stanza['status_message'], stanza['status_code']), stanza['status_code'], 0))
        for repo in stanza['repos']:
            where = 'stanza %s repo%s' % (name, repo['key'])
            for kind, key in BACKUP_AGE_OBJECTIVES:
                limit = objectives.get(key)
                if not limit:
                    continue
                what = 'newest backup' if kind == 'any' else 'newest %s backup' % kind
                last = repo['last'].get(kind)
                if last is None:
                    found.append(_breach(key, where, '%s: no %s' % (where, 'backup' if kind == 'any' else kind + ' backup'),
                                         None, limit))
                elif last['age'] > limit:
                    found.append(_breach(key, where, '%s: %s is %s old, objective %s' % (
                        where, what, format_age(last['age']), format_age(limit)), last['age'], limit))
    for c in snap['clusters']:
        where = 'cluster %s' % c['cluster']
        if c['failing']:
            found.append(_breach('archiving', where, '%s: WAL archiving fails (%s failed attempts, last %s)' % (
                where, c['failed_count'], c['last_failed_wal'] or '-'), c['failed_count'], 0))
        limit = objectives.get('wal_ready_max')
        if limit is not None and c['wal_ready'] is not None and c['wal_ready'] > limit:
            found.append(_breach('wal_ready_max', where, '%s: %d WAL files wait to be archived, objective %d' % (
                where, c['wal_ready'], limit), c['wal_ready'], limit))
        limit = objectives.get('archive_max_age')
        if limit and c['archiver_enabled'] and c['last_archived_age'] is not None and c['last_archived_age'] > limit:
            found.append(_breach('archive_max_age', where, '%s: last WAL archived %s ago, objective %s' % (
                where, format_age(c['last_archived_age']), format_age(limit)), c['last_archived_age'], limit))
    found.extend(_window_breaches(snap))
    for kind, items, key in (('dump', snap['dumps'], 'dump_max_age'), ('drill', snap['drills'], 'drill_max_age')):
        for d in items:
            where = '%s %s' % ('pg_dump job' if kind == 'dump' else 'restore drill', d['name'])
            if d['failed']:
                found.append(_breach('%s_failed' % kind, where, '%s: last run failed %s ago' % (
                    where, format_age(d['age']))))
            limit = objective_for(objectives, key, d['name'])
            if limit and d['last_success_age'] is not None and d['last_success_age'] > limit:
                found.append(_breach(key, where, '%s: last success %s ago, objective %s' % (
                    where, format_age(d['last_success_age']), format_age(limit)), d['last_success_age'], limit))
    return found


def _window_breaches(snap):
    objectives = snap['objectives']
    found = []
    window = snap.get('window')
    limit = objectives.get('window_check_max_age')
    if window and limit and window['age'] is not None and window['age'] > limit:
        found.append(_breach('window_check_max_age', 'recovery window', 'recovery window: last computed %s ago, '
                             'objective %s' % (format_age(window['age']), format_age(limit)), window['age'], limit))
    for w in (window or {}).get('windows') or []:
        where = 'stanza %s repo%s' % (w.get('stanza'), w.get('repo'))
        if not w.get('ok'):
            found.append(_breach('window_check', where, '%s: recovery window not computed: %s' % (where, w.get('error'))))
            continue
        blocking = [g for g in w.get('gaps') or [] if g.get('blocking')]
        if blocking:
            found.append(_breach('wal_gap', where, '%s: WAL gap%s %s: recovery to the moments between '
                                 'the gap and the next full backup is impossible; find why WAL went missing, then '
                                 'take a full backup' % (where, 's' if len(blocking) > 1 else '', ', '.join(
                                     '%s..%s (timeline %s)' % (g.get('first_missing'), g.get('last_missing'),
                                                               g.get('timeline')) for g in blocking)),
                                 len(blocking), 0))
        if w.get('oldest_backup') and not w.get('recoverable'):
            found.append(_breach('window_recoverable', where, '%s: the newest archived WAL (%s) cannot be reached '
                                 'from any backup' % (where, w.get('newest_segment')), 0, 1))
        limit = objectives.get('window_min')
        if limit and w.get('recoverable') and (w.get('window_seconds') or 0) < limit:
            found.append(_breach('window_min', where, '%s: recovery window %s, objective %s' % (
                where, format_age(w['window_seconds']), format_age(limit)), w['window_seconds'], limit))
    limit = objectives.get('verify_max_age')
    for v in snap.get('verify') or []:
        where = 'verify of stanza %s%s' % (v['stanza'], ' repo%s' % v['repo'] if v['repo'] else '')
        if v['failed']:
            found.append(_breach('verify_failed', where, '%s: last run failed %s ago' % (where, format_age(v['age']))))
        elif limit and v['age'] is not None and v['age'] > limit:
            found.append(_breach('verify_max_age', where, '%s: last run %s ago, objective %s' % (
                where, format_age(v['age']), format_age(limit)), v['age'], limit))
    return found


def _window_text(snap, stanza):
    windows = [w for w in ((snap.get('window') or {}).get('windows') or []) if w.get('stanza') == stanza]
    if not windows:
        return '-'
    parts = []
    for w in windows:
        if not w.get('ok'):
            text = 'UNREADABLE'
        elif not w.get('recoverable'):
            text = 'NONE' if w.get('oldest_backup') else '-'
        else:
            text = format_age(w.get('window_seconds'))
        blocking = [g['first_missing'] for g in w.get('gaps') or [] if g.get('blocking')]
        if blocking:
            text += ' GAP %s' % ','.join(blocking)
        parts.append('repo%s %s' % (w.get('repo'), text) if len(windows) > 1 else text)
    return '; '.join(parts)


def _archiving_text(cluster):
    if cluster is None:
        return '-'
    if not cluster['up']:
        return 'DOWN' if not cluster['error'] else 'UNREADABLE'
    if not cluster['archiver_enabled']:
        return 'off'
    ready = cluster['wal_ready'] if cluster['wal_ready'] is not None else '?'
    if cluster['failing']:
        return 'FAILING (%s failed, %s waiting)' % (cluster['failed_count'], ready)
    return 'ok (%s waiting, last %s ago)' % (ready, format_age(cluster['last_archived_age']))


def _job_text(items):
    if not items:
        return '-'
    failed = [d['name'] for d in items if d['failed']]
    if failed:
        return 'FAILED %s' % ','.join(failed)
    ages = [d['last_success_age'] for d in items if d['last_success_age'] is not None]
    return 'ok %s ago' % format_age(max(ages)) if ages else '-'


def health_rows(snap):
    """One row per stanza (or cluster without a stanza) with the health table's columns as text."""
    rows = []
    by_stanza = dict((c['stanza'], c) for c in snap['clusters'] if c['stanza'])
    seen = set()
    for stanza in snap['stanzas']:
        seen.add(stanza['name'])
        full = [r['last']['full']['age'] for r in stanza['repos'] if r['last'].get('full')]
        incr = [r['last']['incr']['age'] for r in stanza['repos'] if r['last'].get('incr')]
        newest = [r['last']['any']['age'] for r in stanza['repos'] if r['last'].get('any')]
        rows.append({'stanza': stanza['name'],
                     'status': 'ok' if stanza['status_code'] == 0 else stanza['status_message'],
                     'full': format_age(min(full)) if full else '-',
                     'incr': format_age(min(incr)) if incr else '-',
                     'newest': format_age(min(newest)) if newest else '-',
                     'archiving': _archiving_text(by_stanza.get(stanza['name'])),
                     'window': _window_text(snap, stanza['name'])})
    for c in snap['clusters']:
        if c['stanza'] not in seen:
            rows.append({'stanza': c['stanza'] or '(%s)' % c['cluster'], 'status': '-', 'full': '-', 'incr': '-',
                         'newest': '-', 'archiving': _archiving_text(c), 'window': '-'})
    if not rows:
        rows.append({'stanza': '-', 'status': '-', 'full': '-', 'incr': '-', 'newest': '-', 'archiving': '-',
                     'window': '-'})
    drill = '-'
    if snap['drills']:
        last = max(snap['drills'], key=lambda d: d['finished_epoch'] or 0)
        drill = '%s %s ago' % ('FAILED' if last['failed'] else last['status'] or '?', format_age(last['age']))
    for row in rows:
        row['drill'] = drill
        row['dump'] = _job_text(snap['dumps'])
    return rows
