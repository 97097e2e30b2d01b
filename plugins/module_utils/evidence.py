# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup evidence for auditors: one archive per host and period.

`gather` reads what the host already knows (pgBackRest info, the job records, the PITR audit records,
the restore point registry, the recovery window record, archiving status) and keeps what belongs to
the period; `write_bundle` writes it as a tar.gz holding evidence.json (for programs), summary.md (for
people), the raw records, `pgbackrest info --output=json` and MANIFEST.sha256 (`sha256sum -c` format,
every other file). The bundle is written atomically, mode 0600, in a 0700 directory.

Secrets never enter the bundle: every secret the host holds (repository cipher passphrases, S3 keys,
pg_dump passphrases and password files, the notification secret) is read only to be searched for in
every file before it is added (and redacted, the finding named in the bundle); the key in use is
identified by a slow, salted fingerprint (PBKDF2-HMAC-SHA256) that cannot be turned back into it.
"""

import binascii
import glob
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile

from . import clock, metrics
from .config_candidate import LIVE_CONFIG, LIVE_INCLUDE
from .records import DUMP_RECORD_PREFIXES, PITR_AUDIT_SUBDIR
from .restore_drill_sources import DEFAULT_JOB_DIR
from .restore_point import DEFAULT_REGISTRY_DIR
from .pgbackrest import parse_info, parse_version
from .pgserver import iso, parse_timestamp
from .process import EngineError

BUNDLE_FORMAT = 1
DEFAULT_EVIDENCE_DIR = '/var/lib/pgops-backup/evidence'
DEFAULT_CONFIG = LIVE_CONFIG
LEGACY_CONFIG = '/etc/pgbackrest.conf'
DEFAULT_INCLUDE_DIR = LIVE_INCLUDE
DEFAULT_PERIOD = '30d'
SECOND = 1000000
# The fingerprint of a repository passphrase: PBKDF2-HMAC-SHA256, salted with stanza and repository,
# this many iterations, the first FINGERPRINT_BYTES bytes in hex. Changing any of these changes every
# fingerprint: the recipe is part of each fingerprint's text.
FINGERPRINT_ITERATIONS = 600000
FINGERPRINT_BYTES = 16
FINGERPRINT_SALT = 'pgops-backup key fingerprint\0%s\0repo%d'
REDACTED = '[REDACTED]'
# pgBackRest options whose value is a secret (any repository index).
SECRET_OPTION_RE = re.compile(r'^(?:repo\d+-)?(?:cipher-pass|s3-key|s3-key-secret|s3-token|azure-key|'
                              r'gcs-key|sftp-private-key-passphrase|tls-server-key-pass)$')
# Secrets whose value the host does not keep in a file we read: redacted by their shape.
_SHAPE_RES = (
    ('a password in a connection string',
     re.compile(r'((?:ssl)?password\s*=\s*)(\'(?:[^\'\\]|\\.)*\'|[^\s\'"&,;]+)', re.IGNORECASE)),
    ('user:password@ in a URL', re.compile(r'(://[^/@\s:"]+:)([^/@\s"]+)(?=@)')),
    ('a secret pgBackRest option', re.compile(r'((?:repo\d+-)?(?:cipher-pass|s3-key-secret|s3-token|azure-key)'
                                              r'\s*[=:]\s*"?)([^\s",}]+)')),
)
MIN_SECRET_LENGTH = 4
_RELATIVE_RE = re.compile(r'^\s*(\d+)\s*([smhdw])\s*$')
_DATE_RE = re.compile(r'^\s*(\d{4}-\d{2}-\d{2})\s*$')


# --- the period -------------------------------------------------------------------------------------

def parse_moment(text, now, what):
    """'now', a duration back from now ('30d', '12h'), a date (UTC midnight), an ISO or PostgreSQL time
    with a zone, or epoch seconds -> epoch seconds (float)."""
    value = str(text).strip() if text is not None else ''
    if value in ('', 'now'):
        return float(now)
    match = _RELATIVE_RE.match(value)
    if match:
        return float(now) - metrics.parse_duration(value)
    if re.match(r'^\d{9,11}(\.\d+)?$', value):
        return float(value)
    match = _DATE_RE.match(value)
    if match:
        value = match.group(1) + ' 00:00:00Z'
    try:
        return parse_timestamp(value.replace('T', ' '), require_zone=True) / float(SECOND)
    except EngineError as exc:
        raise EngineError('%s %r is not a time: %s' % (what, text, exc.msg),
                          hint='write "now", a duration back from now (30d, 12h), a date (2026-11-01, UTC), '
                               'a time with its zone (2026-11-21T09:00:00Z) or epoch seconds')


def period(since=None, until=None, now=None):
    """{'since', 'until'} in epoch seconds; refused when since is not before until."""
    now = clock.now() if now is None else now
    start = parse_moment(DEFAULT_PERIOD if since is None else since, now, '--since')
    end = parse_moment(until, now, '--until')
    if start >= end:
        raise EngineError('the period is empty: --since %s (%s) is not before --until %s (%s)'
                          % (since, _when(start), until or 'now', _when(end)),
                          hint='give a --since earlier than --until, e.g. --since 2026-11-01 --until 2026-12-01')
    return {'since': start, 'until': end}


def _when(epoch):
    return iso(int(round(epoch * SECOND)))[:19] + 'Z' if epoch is not None else None


def _in(epoch, span):
    return epoch is not None and span['since'] <= epoch <= span['until']


# --- pgBackRest configuration and the key fingerprint -----------------------------------------------

def config_files(config=None, include_dir=DEFAULT_INCLUDE_DIR):
    """The files pgBackRest reads, in the order it reads them."""
    main = config or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) or not os.path.exists(LEGACY_CONFIG)
                      else LEGACY_CONFIG)
    files = [main] if os.path.exists(main) else []
    if include_dir and os.path.isdir(include_dir):
        files.extend(sorted(glob.glob(os.path.join(include_dir, '*.conf'))))
    return files


def read_config(files):
    """{section: {option: value}} of pgBackRest INI files (later files add to earlier ones) and the
    files that could not be read."""
    sections, unreadable = {}, []
    for path in files:
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            unreadable.append('%s: %s' % (path, exc.strerror or exc))
            continue
        section = None
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('[') and line.endswith(']'):
                section = line[1:-1].strip()
                sections.setdefault(section, {})
            elif '=' in line and section is not None:
                key, value = line.split('=', 1)
                sections[section][key.strip()] = value.strip()
    return sections, unreadable


def cipher_pass(sections, stanza, repo):
    """The passphrase pgBackRest uses for repository `repo` of `stanza`: the stanza's section wins."""
    key = 'repo%d-cipher-pass' % repo
    for section in (stanza, '%s:backup' % stanza, 'global', 'global:backup'):
        value = (sections.get(section) or {}).get(key)
        if value:
            return value
    return None


def fingerprint(passphrase, stanza, repo, iterations=None):
    """'pbkdf2-sha256:ITERATIONS:HEX' of a passphrase, salted with stanza and repository."""
    iterations = iterations or FINGERPRINT_ITERATIONS
    salt = (FINGERPRINT_SALT % (stanza, repo)).encode('utf-8')
    digest = hashlib.pbkdf2_hmac('sha256', passphrase.encode('utf-8'), salt, iterations, FINGERPRINT_BYTES)
    return 'pbkdf2-sha256:%d:%s' % (iterations, binascii.hexlify(digest).decode('ascii'))


def _secret_files(job_dir):
    """Files of secrets that jobs configured in job_dir read: pg_dump passphrases and password files,
    the notification secret."""
    found = []
    for path in sorted(glob.glob(os.path.join(job_dir, '*.json'))):
        try:
            with open(path) as handle:
                data = json.load(handle)
        except (IOError, OSError, ValueError):
            continue
        if isinstance(data, dict):
            for key in ('passphrase_file', 'passfile'):
                if data.get(key):
                    found.append((key, data[key]))
    found.append(('notify secret', os.path.join(job_dir, 'notify.secret')))
    return found


def _passfile_passwords(text):
    out = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        fields = re.split(r'(?<!\\):', line, maxsplit=4)
        if len(fields) == 5:
            out.append(fields[4].replace('\\:', ':').replace('\\\\', '\\'))
    return out


def host_secrets(sections, job_dir=DEFAULT_JOB_DIR):
    """[(what, value)] of every secret this host holds that we can read."""
    secrets = []
    for section, options in sorted(sections.items()):
        for key, value in sorted(options.items()):
            if SECRET_OPTION_RE.match(key) and value:
                secrets.append(('%s in [%s]' % (key, section), value))
    for what, path in _secret_files(job_dir):
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError):
            continue
        if what == 'passfile':
            secrets.extend(('a password of %s' % path, p) for p in _passfile_passwords(text))
        elif text.strip():
            secrets.append(('%s %s' % (what, path), text.strip()))
            secrets.append(('%s %s' % (what, path), text.rstrip('\n')))
    return [(what, value) for what, value in secrets if len(value) >= MIN_SECRET_LENGTH]


# --- scrubbing --------------------------------------------------------------------------------------

def _forms(value):
    """The ways a secret can appear in a text file: as it is and JSON-escaped."""
    escaped = json.dumps(value)[1:-1]
    return sorted({value, escaped}, key=len, reverse=True)


def scrub(text, secrets):
    """(text without any secret, [what was removed, once per kind])."""
    found = []
    for what, value in secrets:
        for form in _forms(value):
            if form in text:
                text = text.replace(form, REDACTED)
                if what not in found:
                    found.append(what)
    for what, regex in _SHAPE_RES:
        new = regex.sub(lambda m: m.group(1) + REDACTED if m.group(2) != REDACTED else m.group(0), text)
        if new != text:
            text = new
            found.append(what)
    return text, found


def leaked(text, secrets):
    """What of `secrets` still appears in text (the last check before the bundle is kept)."""
    return sorted({what for what, value in secrets for form in _forms(value) if form in text})


# --- gathering --------------------------------------------------------------------------------------

def _load_json(path):
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        return None, None, 'cannot read: %s' % (exc.strerror or exc)
    try:
        data = json.loads(text)
    except ValueError as exc:
        return text, None, 'not JSON: %s' % exc
    return text, data, None


def _epoch_of(data, *keys):
    for key in keys:
        value = data.get(key)
        if value is None or value == '':
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) / (SECOND if value > 1e12 else 1)
        try:
            return parse_timestamp(str(value).replace('T', ' ')) / float(SECOND)
        except EngineError:
            continue
    return None


def record_kind(name):
    """What a record (its file name without .json) is about."""
    for prefix, kind in (('pgbackrest-backup-', 'backup'), ('pgbackrest-verify-', 'verify'),
                         ('pgbackrest-check-', 'check'), ('pitr-restore-', 'pitr'), ('recovery-window', 'window'),
                         ('evidence', 'evidence'), ('notify', 'notify'), ('heartbeat', 'heartbeat')):
        if name.startswith(prefix):
            return kind
    if name.startswith(DUMP_RECORD_PREFIXES):
        return 'dump'
    if name.startswith(metrics.DRILL_PREFIXES):
        return 'drill'
    return 'job'


def _who(data):
    """Who initiated a job, as its record says: requested_by, the user, the backup's annotations."""
    for key in ('requested_by', 'user', 'initiated_by'):
        if data.get(key):
            return str(data[key])
    annotation = data.get('annotation') or {}
    for key in ('requested-by', 'taken-by', 'taken_by'):
        if annotation.get(key):
            return str(annotation[key])
    return None


def _record_entry(name, kind, data, epoch, path):
    entry = {'record': name, 'kind': kind, 'file': path, 'status': data.get('status'), 'time': _when(epoch),
             'epoch': epoch, 'started_at': data.get('started_at'), 'finished_at': data.get('finished_at'),
             'duration_seconds': data.get('duration_seconds'), 'requested_by': _who(data),
             'reason': data.get('reason'), 'error': data.get('error'), 'stanza': data.get('stanza')}
    if kind == 'backup':
        entry.update(label=data.get('label'), type=data.get('type') or data.get('requested_type'), repo=data.get('repo'))
    elif kind == 'drill':
        entry.update(name=data.get('name'), source=data.get('source'), backup_label=data.get('backup_label'),
                     rto_seconds=data.get('rto_seconds'), rpo_seconds=data.get('rpo_seconds'),
                     checks=[{'name': c.get('name'), 'status': c.get('status')}
                             for c in data.get('checks') or [] if isinstance(c, dict)])
    elif kind == 'pitr':
        entry.update(target=(data.get('target') or {}).get('description') if isinstance(data.get('target'), dict)
                     else data.get('target'), destination=data.get('destination'), backup_set=data.get('backup_set'),
                     recovered_to=data.get('recovered_to'), promoted=data.get('promoted'))
    elif kind == 'dump':
        entry.update(dump_job=data.get('dump_job'), size_bytes=data.get('size_bytes'), mode=data.get('mode'))
    return entry


def _records(record_dir, span):
    """(entries in the period, files to copy {archive path: source path}, notes)."""
    entries, files, notes = [], {}, []
    sources = [(p, 'records/%s' % os.path.basename(p)) for p in sorted(glob.glob(os.path.join(record_dir, '*.json')))]
    sources += [(p, 'records/%s/%s' % (PITR_AUDIT_SUBDIR, os.path.basename(p)))
                for p in sorted(glob.glob(os.path.join(record_dir, PITR_AUDIT_SUBDIR, '*.json')))]
    for path, arcname in sources:
        name = os.path.basename(path)[:-len('.json')]
        text, data, problem = _load_json(path)
        if problem or not isinstance(data, dict):
            notes.append('record %s skipped: %s' % (path, problem or 'not a JSON object'))
            continue
        kind = 'pitr' if '/%s/' % PITR_AUDIT_SUBDIR in arcname else record_kind(name)
        epoch = _epoch_of(data, 'finished_epoch', 'finished_at', 'started_at')
        if kind == 'window':
            # The current recovery window and WAL gaps: evidence of now, whatever the period.
            files[arcname] = path
            continue
        if not _in(epoch, span):
            continue
        entry = _record_entry(name, kind, data, epoch, arcname)
        if kind == 'pitr':
            entry['audit'] = '/%s/' % PITR_AUDIT_SUBDIR in arcname
        entries.append(entry)
        files[arcname] = path
    # The last record of a PITR job repeats its newest audit record: listed once.
    audited = {(e['finished_at'], e['status']) for e in entries if e.get('audit')}
    entries = [e for e in entries if e['kind'] != 'pitr' or e['audit'] or (e['finished_at'], e['status']) not in audited]
    return entries, files, notes


def _restore_points(registry_dir, span):
    entries, files = [], {}
    for path in sorted(glob.glob(os.path.join(registry_dir, '*.json'))):
        _text, data, problem = _load_json(path)
        if problem or not isinstance(data, dict):
            continue
        epoch = _epoch_of(data, 'created_us', 'created_at', 'recorded_at')
        if _in(epoch, span):
            arcname = 'restore-points/%s' % os.path.basename(path)
            entries.append({'name': data.get('name'), 'time': _when(epoch), 'lsn': data.get('lsn'),
                            'timeline': data.get('timeline'), 'stanza': data.get('stanza'),
                            'requested_by': data.get('requested_by'), 'reason': data.get('reason'), 'file': arcname})
            files[arcname] = path
    return entries, files


def _backup_entry(stanza, backup, keys, records):
    repo = backup.get('repo_key')
    key = keys.get((stanza['name'], repo)) or {}
    annotation = backup.get('annotation') or {}
    record = next((r for r in records if r['kind'] == 'backup' and r.get('label') == backup['label']), None)
    return {
        'stanza': stanza['name'], 'label': backup['label'], 'type': backup['type'], 'prior': backup.get('prior'),
        'start': _when(backup.get('start')), 'stop': _when(backup.get('stop')), 'start_epoch': backup.get('start'),
        'stop_epoch': backup.get('stop'), 'duration_seconds': backup.get('duration_seconds'),
        'size': backup.get('size'), 'repo_size': backup.get('repo_size'), 'repo_delta': backup.get('repo_delta'),
        'repo': repo,
        'wal_start': backup.get('wal_start'), 'wal_stop': backup.get('wal_stop'),
        'lsn_start': backup.get('lsn_start'), 'lsn_stop': backup.get('lsn_stop'), 'error': backup.get('error'),
        'annotation': annotation, 'requested_by': (record or {}).get('requested_by') or _who(backup),
        'reason': annotation.get('reason') or (record or {}).get('reason'),
        'record': (record or {}).get('file'),
        'cipher': key.get('cipher'), 'key_fingerprint': key.get('fingerprint'),
    }


def _keys(stanzas, sections, unreadable, iterations):
    """{(stanza, repo): {'cipher', 'fingerprint', 'note'}} for every repository of every stanza."""
    keys = {}
    for stanza in stanzas:
        for repo in stanza.get('repos') or [{'key': 1, 'cipher': stanza.get('cipher')}]:
            number = repo.get('key') or 1
            cipher = repo.get('cipher') or stanza.get('cipher') or 'none'
            entry = {'stanza': stanza['name'], 'repo': number, 'cipher': cipher, 'fingerprint': None, 'note': None}
            if cipher != 'none':
                secret = cipher_pass(sections, stanza['name'], number)
                if secret:
                    entry['fingerprint'] = fingerprint(secret, stanza['name'], number, iterations)
                elif unreadable:
                    entry['note'] = 'the pgBackRest configuration is not readable here (%s): run as root' % (
                        '; '.join(unreadable))
                else:
                    entry['note'] = ('no repo%d-cipher-pass in this host\'s pgBackRest configuration (a repository '
                                     'host keeps it): make the bundle there for the fingerprint' % number)
            keys[(stanza['name'], number)] = entry
    return keys


def gather(runner, pgbr, span, record_dir, config=None, include_dir=DEFAULT_INCLUDE_DIR, job_dir=DEFAULT_JOB_DIR,
           registry_dir=DEFAULT_REGISTRY_DIR, hostname=None, requested_by=None, reason=None, stanzas=None,
           iterations=None):
    """Everything the bundle holds: {'evidence': dict, 'files': {archive path: source}, 'texts':
    {archive path: text}, 'secrets': [(what, value)]}. Reads only."""
    notes = []
    texts = {}
    info = []
    info_error = None
    version = None
    try:
        runner.binary('pgbackrest')
        info_text = pgbr.run('info', '--output=json').stdout
        texts['pgbackrest-info.json'] = info_text
        info = parse_info(info_text)
        # `version` takes no --config: asked without the configuration.
        version = '.'.join(str(p) for p in parse_version(runner.run([pgbr.binary, 'version']).stdout))
    except EngineError as exc:
        info_error = exc.full_message()
        notes.append('pgBackRest: %s' % info_error)
    if stanzas:
        info = [s for s in info if s['name'] in stanzas]
    sections, unreadable = read_config(config_files(config, include_dir))
    secrets = host_secrets(sections, job_dir)
    keys = _keys(info, sections, unreadable, iterations)
    records, files, record_notes = _records(record_dir, span)
    notes.extend(record_notes)
    points, point_files = _restore_points(registry_dir, span)
    files.update(point_files)
    backups = []
    for stanza in info:
        backups.extend(_backup_entry(stanza, b, keys, records) for b in stanza['backups'] if _in(b.get('stop'), span))
    backups.sort(key=lambda b: (b['stop_epoch'] or 0, b['label']))
    window_path = os.path.join(record_dir, 'recovery-window.json')
    window = None
    if os.path.exists(window_path):
        _text, data, problem = _load_json(window_path)
        window = data if isinstance(data, dict) else {'error': problem}
    try:
        snap = metrics.collect(runner, record_dir=record_dir, state={}, config=config)
        archiving = snap.get('clusters') or []
        breaches = metrics.evaluate(snap)
    except EngineError as exc:
        archiving, breaches = [], []
        notes.append('archiving status: %s' % exc.full_message())
    now = clock.now()
    evidence = {
        'bundle_format': BUNDLE_FORMAT, 'host': hostname, 'generated_at': _when(now), 'generated_epoch': now,
        'requested_by': requested_by, 'reason': reason,
        'period': {'since': _when(span['since']), 'until': _when(span['until']),
                   'since_epoch': span['since'], 'until_epoch': span['until']},
        'pgbackrest_version': version, 'pgbackrest_error': info_error,
        'key_fingerprint': {'algorithm': 'PBKDF2-HMAC-SHA256', 'iterations': iterations or FINGERPRINT_ITERATIONS,
                            'bytes': FINGERPRINT_BYTES, 'salt': 'pgops-backup key fingerprint\\0STANZA\\0repoN'},
        'stanzas': [{'name': s['name'], 'status': s['status_message'], 'cipher': s.get('cipher'),
                     'repositories': [keys[k] for k in sorted(keys) if k[0] == s['name']],
                     'archive': s['archive'], 'archive_min': s['archive_min'], 'archive_max': s['archive_max'],
                     'backups_in_repository': s['backup_count'],
                     'oldest_backup': s['backups'][0]['label'] if s['backups'] else None,
                     'newest_backup': s['backups'][-1]['label'] if s['backups'] else None} for s in info],
        'backups': backups,
        'jobs': [r for r in records if r['kind'] not in ('drill', 'pitr')],
        'drills': [r for r in records if r['kind'] == 'drill'],
        'pitr': [r for r in records if r['kind'] == 'pitr'],
        'restore_points': points,
        'recovery_window': _window_summary(window),
        'archiving': archiving, 'health_breaches': breaches,
        'notes': notes, 'redactions': [],
    }
    return {'evidence': evidence, 'files': files, 'texts': texts, 'secrets': secrets}


def _window_summary(window):
    if not window:
        return None
    out = {'checked_at': window.get('finished_at'), 'status': window.get('status'), 'error': window.get('error'),
           'file': 'records/recovery-window.json', 'windows': []}
    for w in window.get('windows') or []:
        if not isinstance(w, dict):
            continue
        first, latest = w.get('first_recoverable') or {}, w.get('latest_recoverable') or {}
        out['windows'].append({
            'stanza': w.get('stanza'), 'repo': w.get('repo'), 'recoverable': w.get('recoverable'),
            'first_recoverable': _when(first.get('epoch')), 'latest_recoverable': _when(latest.get('epoch')),
            'window_seconds': w.get('window_seconds'),
            'gaps': [{'timeline': g.get('timeline'), 'first_missing': g.get('first_missing'),
                      'last_missing': g.get('last_missing'), 'segments': g.get('segments'),
                      'blocking': g.get('blocking')} for g in w.get('gaps') or [] if isinstance(g, dict)]})
    return out


# --- the summary page -------------------------------------------------------------------------------

def _size(value):
    if value is None:
        return '-'
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024.0
    return str(value)


def _cell(value):
    return '-' if value is None or value == '' else str(value).replace('|', '\\|').replace('\n', ' ')


def summary(ev):
    """summary.md: the bundle for a person."""
    p = ev['period']
    out = ['# Backup evidence: %s' % ev['host'], '',
           '- period: %s to %s (UTC)' % (p['since'], p['until']),
           '- generated: %s by %s%s' % (ev['generated_at'], ev['requested_by'] or '-',
                                        ' (reason: %s)' % ev['reason'] if ev['reason'] else ''),
           '- pgBackRest: %s' % (ev['pgbackrest_version'] or ev['pgbackrest_error'] or '-'),
           '- verify this bundle: `sha256sum -c MANIFEST.sha256` in the unpacked directory', '']
    out += ['## Stanzas and encryption', '',
            '| stanza | status | repo | cipher | key fingerprint | WAL archive | backups in repository |',
            '|---|---|---|---|---|---|---|']
    for s in ev['stanzas']:
        for r in s['repositories'] or [{}]:
            out.append('| %s | %s | %s | %s | %s | %s .. %s | %s |' % (
                _cell(s['name']), _cell(s['status']), _cell(r.get('repo')), _cell(r.get('cipher')),
                _cell(r.get('fingerprint') or r.get('note')), _cell(s['archive_min']), _cell(s['archive_max']),
                s['backups_in_repository']))
    out += ['', '## Backups of the period (%d)' % len(ev['backups']), '',
            '| label | type | stanza | repo | start | stop | size | written to repository | cipher | key fingerprint | by | reason |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for b in ev['backups']:
        out.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            _cell(b['label']), b['type'], _cell(b['stanza']), _cell(b['repo']), _cell(b['start']), _cell(b['stop']),
            _size(b['size']), _size(b['repo_delta']), _cell(b['cipher']), _cell(b['key_fingerprint']),
            _cell(b['requested_by']), _cell(b['reason'])))
    out += ['', '## WAL archive status and gaps', '']
    w = ev['recovery_window']
    if w:
        out.append('Recovery window checked %s (%s):' % (_cell(w['checked_at']), _cell(w['status'])))
        out.append('')
        for entry in w['windows']:
            gaps = entry['gaps']
            out.append('- stanza %s repo%s: %s; %s' % (
                entry['stanza'], entry['repo'],
                'recoverable from %s to %s' % (entry['first_recoverable'], entry['latest_recoverable'])
                if entry['recoverable'] else 'NOT recoverable to the newest WAL',
                '%d WAL gap(s): %s' % (len(gaps), ', '.join('%s..%s (%d segments%s)' % (
                    g['first_missing'], g['last_missing'], g['segments'] or 0, ', blocking' if g['blocking'] else '')
                    for g in gaps)) if gaps else 'no WAL gap'))
    else:
        out.append('No recovery window record (`pgops-backup window` has not run on this host).')
    for c in ev['archiving']:
        out.append('- cluster %s: archive_mode %s, %s archived, %s failed%s, last archived %s, %s WAL file(s) waiting' % (
            c.get('cluster'), _cell(c.get('archive_mode')), _cell(c.get('archived_count')), _cell(c.get('failed_count')),
            ' (FAILING)' if c.get('failing') else '', _cell(c.get('last_archived_wal')), _cell(c.get('wal_ready'))))
    for b in ev['health_breaches']:
        out.append('- objective breached: %s' % b.get('message'))
    for title, rows, columns in (
            ('Restore drills', ev['drills'], ('time', 'name', 'status', 'backup_label', 'rto_seconds', 'rpo_seconds',
                                              'requested_by', 'record')),
            ('Point-in-time recoveries (audit records)', ev['pitr'],
             ('time', 'status', 'stanza', 'target', 'destination', 'backup_set', 'requested_by', 'reason', 'file')),
            ('Restore points', ev['restore_points'], ('time', 'name', 'lsn', 'requested_by', 'reason')),
            ('Job records', ev['jobs'], ('time', 'record', 'kind', 'status', 'requested_by', 'error'))):
        out += ['', '## %s (%d)' % (title, len(rows)), '']
        if rows:
            out += ['| %s |' % ' | '.join(columns), '|%s' % ('---|' * len(columns))]
            for row in rows:
                out.append('| %s |' % ' | '.join(_cell(row.get(c)) for c in columns))
    if ev['redactions']:
        out += ['', '## Secrets found in records (redacted)', '']
        out += ['- %s: %s' % (r['file'], ', '.join(r['what'])) for r in ev['redactions']]
    if ev['notes']:
        out += ['', '## Notes', ''] + ['- %s' % n for n in ev['notes']]
    return '\n'.join(out) + '\n'


# --- writing ----------------------------------------------------------------------------------------

def _private_dir(path):
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
    st = os.stat(path)
    if st.st_uid != os.geteuid():
        raise EngineError('the evidence directory %s belongs to uid %d, not to this user (uid %d)'
                          % (path, st.st_uid, os.geteuid()),
                          hint='choose a directory of your own with --output-dir, or run as its owner')
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def write_bundle(gathered, output_dir=DEFAULT_EVIDENCE_DIR):
    """Write the tar.gz; returns {'path', 'sha256', 'size', 'files', 'redactions'}."""
    ev = gathered['evidence']
    secrets = gathered['secrets']
    contents = {}
    for arcname, text in sorted(gathered['texts'].items()):
        contents[arcname] = text
    for arcname, source in sorted(gathered['files'].items()):
        try:
            with open(source, errors='replace') as handle:
                contents[arcname] = handle.read()
        except (IOError, OSError) as exc:
            ev['notes'].append('%s not copied: %s' % (source, exc.strerror or exc))
    for arcname in sorted(contents):
        contents[arcname], found = scrub(contents[arcname], secrets)
        if found:
            ev['redactions'].append({'file': arcname, 'what': found})
    stamp = ev['generated_at'].replace('-', '').replace(':', '')
    top = 'evidence-%s-%s' % (re.sub(r'[^A-Za-z0-9_.-]', '_', ev['host'] or 'host'), stamp)
    ev['files'] = sorted(contents) + ['summary.md']
    contents['evidence.json'] = json.dumps(ev, indent=2, sort_keys=True, default=str) + '\n'
    contents['summary.md'] = summary(ev)
    for arcname in ('evidence.json', 'summary.md'):
        contents[arcname], found = scrub(contents[arcname], secrets)
    data = {name: text.encode('utf-8') for name, text in contents.items()}
    manifest = ''.join('%s  %s\n' % (hashlib.sha256(data[n]).hexdigest(), n) for n in sorted(data))
    data['MANIFEST.sha256'] = manifest.encode('utf-8')
    bad = [(n, leaked(d.decode('utf-8', 'replace'), secrets)) for n, d in sorted(data.items())]
    bad = [(n, w) for n, w in bad if w]
    if bad:
        raise EngineError('refusing to write the evidence bundle: a secret is still in %s'
                          % ', '.join('%s (%s)' % (n, ', '.join(w)) for n, w in bad),
                          hint='report this as a bug of pgops.backup; nothing was written')
    _private_dir(output_dir)
    path = os.path.join(output_dir, '%s.tar.gz' % top)
    mtime = int(ev['generated_epoch'])
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % top, dir=output_dir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            with tarfile.open(fileobj=handle, mode='w:gz') as tar:
                directory = tarfile.TarInfo(top)
                directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o700, mtime
                tar.addfile(directory)
                for name in sorted(data):
                    info = tarfile.TarInfo('%s/%s' % (top, name))
                    info.size, info.mode, info.mtime = len(data[name]), 0o600, mtime
                    tar.addfile(info, io.BytesIO(data[name]))
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    with open(path, 'rb') as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    return {'path': path, 'sha256': digest, 'size': os.path.getsize(path), 'top': top,
            'files': sorted(data), 'redactions': ev['redactions']}


def verify_bundle(path):
    """Check a bundle against its manifest: {'ok', 'problems', 'files', 'evidence'}."""
    problems, files, manifest, evidence = [], {}, None, None
    with tarfile.open(path, 'r:gz') as tar:
        for member in tar.getmembers():
            if member.isfile():
                name = member.name.split('/', 1)[1] if '/' in member.name else member.name
                files[name] = tar.extractfile(member).read()
    if 'MANIFEST.sha256' not in files:
        return {'ok': False, 'problems': ['no MANIFEST.sha256'], 'files': sorted(files), 'evidence': None}
    manifest = {}
    for line in files['MANIFEST.sha256'].decode('utf-8').splitlines():
        digest, name = line.split('  ', 1)
        manifest[name] = digest
    for name in sorted(set(files) - {'MANIFEST.sha256'}):
        if name not in manifest:
            problems.append('%s is not in the manifest' % name)
        elif hashlib.sha256(files[name]).hexdigest() != manifest[name]:
            problems.append('%s does not match its sha256' % name)
    problems.extend('%s is in the manifest but not in the bundle' % n for n in sorted(set(manifest) - set(files)))
    if 'evidence.json' in files:
        evidence = json.loads(files['evidence.json'].decode('utf-8'))
    return {'ok': not problems, 'problems': problems, 'files': sorted(files), 'evidence': evidence}
