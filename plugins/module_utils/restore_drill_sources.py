# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a restore drill restores: a pgBackRest backup set, or the newest good pg_dump set.

pgBackRest: the newest backup of the stanza's current database (or the one asked for, or the
newest that precedes a time/LSN target), from all repositories or one.

pg_dump: the dump job's record (`pg-dump-JOB.json` in the record directory, written by every run of
`pgops-backup dump`) names the destination and the databases of its last good run; each
database's newest good dump of that job is read from its manifest (dump_manifest.list_units).
Without a record, a destination given explicitly is scanned. Reads only.
"""

import glob
import json
import os

from . import dump_manifest as layout
from .pgserver import iso
from .pitr import SECOND, choose_backup
from .process import EngineError
from .records import DUMP_RECORD_PREFIXES

DEFAULT_JOB_DIR = '/etc/pgops-backup'


# --- pgBackRest ------------------------------------------------------------------------------------

def current_database(stanza):
    if not stanza['databases']:
        raise EngineError('stanza %s has no database history in the repository' % stanza['name'])
    return max(stanza['databases'], key=lambda d: d['id'] or 0)


def choose_pgbackrest_backup(stanza, target, backup_set=None, repo=None):
    """(backup, reason) for a drill: see the module docstring."""
    if not stanza['exists']:
        raise EngineError('stanza %s does not exist in the repository (%s)' % (stanza['name'], stanza['status_message']),
                          hint='create it with the pgbackrest role (pgops.backup.pgbackrest_stanza)')
    db = current_database(stanza)
    backups = [b for b in stanza['backups'] if b.get('db_id') in (None, db['id'])
               and (not repo or b.get('repo_key') in (None, repo)) and b.get('label')]
    backups.sort(key=lambda b: (b['stop'] or 0, b['label']))
    if not backups:
        raise EngineError('stanza %s has no backup%s of its current database to restore' % (
            stanza['name'], ' in repo%d' % repo if repo else ''),
            hint='take one: pgops-backup backup --stanza %s --type full' % stanza['name'])
    if backup_set and not [b for b in backups if b['label'] == backup_set]:
        raise EngineError('backup set %s is not in stanza %s%s (backups: %s)' % (
            backup_set, stanza['name'], ' repo%d' % repo if repo else '', ', '.join(b['label'] for b in backups)))
    position = {'time_us': target.time_us if target.kind == 'time' else None,
                'lsn': target.lsn if target.kind == 'lsn' else None}
    if target.kind in ('xid', 'name') and not backup_set:
        return backups[-1], 'newest backup (the %s target must come after its end)' % target.kind
    backup, reason = choose_backup(backups, target, position, backup_set)
    return backup, reason


def describe_backup(backup, reason=None):
    return {'label': backup['label'], 'type': backup['type'],
            'start': iso(backup['start'] * SECOND) if backup.get('start') else None,
            'stop': iso(backup['stop'] * SECOND) if backup.get('stop') else None,
            'stop_epoch': backup.get('stop'), 'lsn_stop': backup.get('lsn_stop'), 'wal_start': backup.get('wal_start'),
            'wal_stop': backup.get('wal_stop'), 'size': backup.get('size'), 'repo_size': backup.get('repo_size'),
            'repo_key': backup.get('repo_key'), 'prior': backup.get('prior'), 'error': bool(backup.get('error')),
            'reason': reason}


# --- pg_dump ---------------------------------------------------------------------------------------

def _load_json(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def dump_records(record_dir):
    """{job: record} of the pg_dump jobs (not of restores or prune-only runs) in the record directory."""
    found = {}
    for prefix in DUMP_RECORD_PREFIXES:
        for path in sorted(glob.glob(os.path.join(record_dir or '', prefix + '*.json'))):
            data = _load_json(path)
            if not data or 'source' in data or data.get('mode', 'dump') != 'dump' or not data.get('destination'):
                continue
            job = data.get('dump_job') or os.path.basename(path)[len(prefix):-len('.json')]
            found[job] = dict(data, record_path=path)
    return found


def job_file(job, job_dir=DEFAULT_JOB_DIR):
    """The pg_dump role's job file of a job (destination, passphrase_file), or None."""
    if not job or not job_dir:
        return None
    return _load_json(os.path.join(job_dir, 'pg-dump-%s.json' % job))


def find_dump_set(record_dir, job=None, destination=None, job_dir=DEFAULT_JOB_DIR):
    """The newest good dump of each database of a pg_dump job.

    Returns {'job', 'destination', 'record', 'record_status', 'units': [{database, path, manifest, ...}],
    'passphrase_file'} with units newest first. Raises EngineError naming what is missing."""
    records = dump_records(record_dir)
    record = None
    if job:
        record = records.get(job)
    elif not destination:
        usable = [r for r in records.values() if r.get('status') == 'ok'] or list(records.values())
        if not usable:
            raise EngineError('no pg_dump job record in %s: nothing tells which dumps to restore' % record_dir,
                              hint='run a pg_dump job first (pgops.backup.pg_dump role, `pgops-backup dump`) or give '
                                   'dump_destination')
        record = max(usable, key=lambda r: (r.get('finished_epoch') or 0, r.get('dump_job') or ''))
        job = record.get('dump_job') or os.path.basename(record['record_path'])[len('pg-dump-'):-len('.json')]
    settings = job_file(job, job_dir) or {}
    if not destination:
        destination = (record or {}).get('destination') or settings.get('destination')
    if not destination:
        raise EngineError('no record or job file of pg_dump job %s (looked in %s and %s)' % (job, record_dir, job_dir),
                          hint='check the job name, or give dump_destination')
    if not os.path.isdir(destination):
        raise EngineError('the dump destination %s does not exist' % destination)
    wanted = None
    if record and record.get('status') == 'ok' and record.get('databases'):
        wanted = list(record['databases'])
    dirs = layout.database_dirs(destination)
    names = wanted if wanted is not None else sorted(dirs)
    units = []
    missing = []
    for database in names:
        db_dir = dirs.get(database) or os.path.join(destination, layout.encode_name(database))
        good = [u for u in layout.list_units(db_dir) if not job or u['manifest'].get('job') in (None, job)]
        if not good:
            missing.append(database)
            continue
        unit = good[0]
        manifest = unit['manifest']
        units.append({'database': database, 'path': unit['path'], 'manifest': manifest,
                      'finished_epoch': manifest.get('finished_epoch'), 'finished_at': manifest.get('finished_at'),
                      'started_epoch': manifest.get('started_epoch'), 'format': manifest['options'].get('format'),
                      'encrypted': bool(manifest.get('encrypted')), 'tables': manifest.get('table_count'),
                      'rows_total': manifest.get('rows_total'), 'size_bytes': manifest.get('size_bytes'),
                      'globals': bool(manifest.get('globals_path')), 'job': manifest.get('job')})
    if missing:
        raise EngineError(
            'no good dump of database(s) %s%s in %s' % (', '.join(missing), ' from job %s' % job if job else '',
                                                        destination),
            hint='run the pg_dump job again; `pgops-backup dump --job-file ...` says why it failed')
    if not units:
        raise EngineError('no good dump in %s%s' % (destination, ' from job %s' % job if job else ''),
                          hint='run the pg_dump job first')
    units.sort(key=lambda u: (u['finished_epoch'] or 0, u['database']), reverse=True)
    return {'job': job, 'destination': destination, 'record': (record or {}).get('record_path'),
            'record_status': (record or {}).get('status'), 'units': units,
            'passphrase_file': settings.get('passphrase_file')}


def public_dump_set(dump_set):
    """The dump set without the manifests, for reports."""
    if not dump_set:
        return None
    out = dict((k, v) for k, v in dump_set.items() if k != 'units')
    out['units'] = [dict((k, v) for k, v in u.items() if k != 'manifest') for u in dump_set['units']]
    out['databases'] = [u['database'] for u in dump_set['units']]
    return out
