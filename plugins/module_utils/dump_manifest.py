# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where logical dumps live and what their manifest says.

Layout under a destination directory:

    DEST/<database>/<YYYYmmddTHHMMSSZ>/          one dump: renamed into place only when it is good
        <database>.dump | .dir/ | .sql [.gpg]    pg_dump output (custom, directory or plain)
        globals.sql[.gpg]                        pg_dumpall --globals-only of the same run
        manifest.json                            what is in it (written last)
    DEST/<database>/.partial-*                   work in progress; removed on failure
    DEST/.pgops-dump.lock                        one job per destination at a time

<database> is the database name with every character outside [A-Za-z0-9_-] percent-encoded, so
any name (spaces, unicode, slashes, dots) maps to one safe directory name and back.
A dump directory counts as good when its manifest.json says status ok; nothing else is ever pruned.
A good dump is partial when options left out part of the database (`partial_reasons`): it is
marked so in its manifest and record, and retention never takes it for the last complete dump.
"""

import datetime
import hashlib
import json
import os
import re

try:
    from urllib.parse import quote, unquote
except ImportError:  # pragma: no cover - Python 2 is not supported on managed hosts
    from urllib import quote, unquote

from . import clock
from .process import EngineError

MANIFEST = 'manifest.json'
MANIFEST_FORMAT = 1
PARTIAL_PREFIX = '.partial-'
RESTORE_PREFIX = '.restore-'
LOCK_FILE = '.pgops-dump.lock'
STAMP_FORMAT = '%Y%m%dT%H%M%SZ'
STAMP_RE = re.compile(r'^\d{8}T\d{6}Z(?:-\d+)?$')
CHUNK = 1024 * 1024
SUFFIXES = {'custom': '.dump', 'directory': '.dir', 'plain': '.sql'}
# pg_dump options that leave part of the database out of the dump, and what is missing then.
PARTIAL_OPTIONS = {
    'schema-only': 'no table data (schema only)',
    'data-only': 'no schema (data only)',
    'no-data': 'no table data',
    'no-schema': 'no schema',
    'statistics-only': 'statistics only',
    'section': 'only some sections',
    'exclude-table': 'tables excluded',
    'exclude-table-and-children': 'tables excluded',
    'exclude-table-data-and-children': 'table data excluded',
    'exclude-schema': 'schemas excluded',
    'exclude-extension': 'extensions excluded',
    'table': 'only some tables',
    'table-and-children': 'only some tables',
    'schema': 'only some schemas',
    'extension': 'only some extensions',
    'filter': 'objects filtered by a filter file',
    'no-large-objects': 'no large objects',
    'no-blobs': 'no large objects',
}


def partial_reasons(options):
    """Why a dump taken with these job options (options_record: extra_options) is partial:
    ['--schema-only: no table data (schema only)', ...]; [] for a complete dump.
    The job's own exclude_table_data (cache tables, whose definitions stay in the dump and which the
    manifest expects empty after a restore) does not make a dump partial."""
    reasons = []
    for option in (options or {}).get('extra_options') or []:
        name = str(option)[2:].split('=', 1)[0] if str(option).startswith('--') else None
        if name in PARTIAL_OPTIONS:
            reasons.append('%s: %s' % (option, PARTIAL_OPTIONS[name]))
    return reasons


def is_partial(manifest):
    """A manifest's partial flag; manifests written before the flag existed: from their options."""
    if 'partial' in manifest:
        return bool(manifest['partial'])
    return bool(partial_reasons(manifest.get('options')))


def encode_name(name):
    """Database name -> directory name (reversible, never hidden, never '.' or '..')."""
    return quote(name, safe='').replace('.', '%2E').replace('~', '%7E') if name else '%00'


def decode_name(encoded):
    return unquote(encoded)


def stamp(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(STAMP_FORMAT)


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def dump_basename(database, fmt):
    return encode_name(database) + SUFFIXES[fmt]


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def walk_files(root):
    """Every regular file under root (a file or a directory), as paths relative to root's parent."""
    base = os.path.dirname(root)
    if os.path.isfile(root):
        return [os.path.relpath(root, base)]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            found.append(os.path.relpath(os.path.join(dirpath, name), base))
    return found


def describe_files(unit_dir, relpaths, role):
    """[{path, size, sha256, role}] for files of a dump directory."""
    out = []
    for rel in relpaths:
        full = os.path.join(unit_dir, rel)
        out.append({'path': rel, 'size': os.path.getsize(full), 'sha256': sha256_file(full), 'role': role})
    return out


def verify_files(unit_dir, files):
    """Compare sizes and sha256 with the manifest; returns a list of problems (empty when all match)."""
    problems = []
    for entry in files:
        full = os.path.join(unit_dir, entry['path'])
        if not os.path.isfile(full):
            problems.append('%s is missing' % entry['path'])
            continue
        size = os.path.getsize(full)
        if size != entry['size']:
            problems.append('%s has %d bytes, the manifest says %d' % (entry['path'], size, entry['size']))
            continue
        digest = sha256_file(full)
        if digest != entry['sha256']:
            problems.append('%s has sha256 %s, the manifest says %s' % (entry['path'], digest, entry['sha256']))
    return problems


def build_manifest(database, session, counts, toc, files, options, versions, timing, job=None, host=None,
                   globals_file=None, warnings=None, command=None):
    """The manifest of one good dump. `toc` says which tables and data the archive holds
    (see pg_dump.parse_toc); a table's expected rows after a restore are `rows` when its data is
    in the dump and 0 when only its definition is (exclude_table_data)."""
    tables = []
    for table in counts['tables']:
        entry = dict(table)
        entry['in_dump'] = table['oid'] in toc['tables']
        entry['data_in_dump'] = table['oid'] in toc['table_data']
        tables.append(entry)
    counted = [t for t in tables if t['kind'] == 'table']
    expected_rows = sum(t['rows'] for t in counted if t['data_in_dump'])
    return {
        'manifest_format': MANIFEST_FORMAT,
        'status': 'ok',
        'tool': 'pgops-backup',
        'job': job,
        'host': host,
        'database': database,
        'database_info': session['database'],
        'server_version': session['server_version'],
        'server_version_num': session['server_version_num'],
        'pg_dump_version': versions.get('pg_dump'),
        'snapshot': session.get('snapshot'),
        'options': options,
        'command': command,
        'started_at': iso(timing['started']),
        'finished_at': iso(timing['finished']),
        'started_epoch': timing['started'],
        'finished_epoch': timing['finished'],
        'duration_seconds': round(timing['finished'] - timing['started'], 3),
        'dump_seconds': timing.get('dump_seconds'),
        'count_seconds': counts.get('count_seconds'),
        'files': files,
        'size_bytes': sum(f['size'] for f in files),
        'dump_path': options.get('dump_path'),
        'globals_path': globals_file,
        'encrypted': bool(options.get('encrypted')),
        'tables': tables,
        'table_count': len(counted),
        'rows_total': expected_rows,
        'large_objects': {'count': counts['large_objects'], 'in_dump': bool(toc.get('large_objects'))},
        'warnings': list(warnings or []),
        'partial': bool(partial_reasons(options)),
        'partial_reasons': partial_reasons(options),
    }


def expected_counts(manifest):
    """{(schema, name): rows expected after a restore} for the tables whose definition is in the dump."""
    expected = {}
    for table in manifest['tables']:
        if table['kind'] != 'table' or not table.get('in_dump', True):
            continue
        expected[(table['schema'], table['name'])] = table['rows'] if table.get('data_in_dump') else 0
    return expected


def compare_counts(manifest, restored):
    """Compare a restored database's counts (SnapshotWork.count()) with the manifest.
    Returns {matches, mismatches: [...], tables_compared, rows_total, warnings}."""
    expected = expected_counts(manifest)
    actual = dict(((t['schema'], t['name']), t['rows']) for t in restored['tables'] if t['kind'] == 'table')
    mismatches = []
    for key in sorted(expected):
        if key not in actual:
            mismatches.append({'schema': key[0], 'name': key[1], 'expected': expected[key], 'restored': None,
                               'problem': 'missing after restore'})
        elif actual[key] != expected[key]:
            mismatches.append({'schema': key[0], 'name': key[1], 'expected': expected[key], 'restored': actual[key],
                               'problem': 'row count differs'})
    dumped = set((t['schema'], t['name']) for t in manifest['tables'])
    for key in sorted(set(actual) - dumped):
        mismatches.append({'schema': key[0], 'name': key[1], 'expected': None, 'restored': actual[key],
                           'problem': 'not in the manifest'})
    lo = manifest.get('large_objects') or {}
    if lo.get('in_dump') and lo.get('count') != restored.get('large_objects'):
        mismatches.append({'schema': None, 'name': 'large objects', 'expected': lo.get('count'),
                           'restored': restored.get('large_objects'), 'problem': 'large object count differs'})
    warnings = []
    views = dict(((t['schema'], t['name']), t['rows']) for t in restored['tables'] if t['kind'] == 'materialized view')
    for table in manifest['tables']:
        key = (table['schema'], table['name'])
        if table['kind'] == 'materialized view' and key in views and views[key] != table['rows']:
            # A refresh on restore recomputes the view: a stale view in the source legitimately differs.
            warnings.append('materialized view %s.%s has %s rows, %s when dumped' % (
                key[0], key[1], views[key], table['rows']))
    return {'matches': not mismatches, 'mismatches': mismatches, 'tables_compared': len(expected),
            'rows_total': sum(v for k, v in actual.items() if k in expected and v is not None),
            'warnings': warnings}


def read_manifest(unit_dir):
    path = os.path.join(unit_dir, MANIFEST)
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise EngineError('cannot read the dump manifest %s: %s' % (path, exc))
    if not isinstance(data, dict) or data.get('manifest_format') != MANIFEST_FORMAT:
        raise EngineError('%s is not a pgops-backup dump manifest (format %r)' % (
            path, data.get('manifest_format') if isinstance(data, dict) else None))
    return data


def list_units(db_dir):
    """Good dumps in one database directory, newest first: [{path, name, finished_epoch, manifest}].
    Directories that are not ours, or whose manifest is unreadable or not ok, are left out."""
    units = []
    if not os.path.isdir(db_dir):
        return units
    for name in os.listdir(db_dir):
        path = os.path.join(db_dir, name)
        if not STAMP_RE.match(name) or not os.path.isdir(path):
            continue
        try:
            manifest = read_manifest(path)
        except EngineError:
            continue
        if manifest.get('status') != 'ok':
            continue
        units.append({'path': path, 'name': name, 'database': manifest.get('database'),
                      'finished_epoch': manifest.get('finished_epoch') or 0, 'manifest': manifest,
                      'partial': is_partial(manifest)})
    units.sort(key=lambda u: (u['finished_epoch'], u['name']), reverse=True)
    return units


def database_dirs(destination):
    """{database name: directory} for every database directory under a destination."""
    found = {}
    if not os.path.isdir(destination):
        return found
    for name in sorted(os.listdir(destination)):
        path = os.path.join(destination, name)
        if name.startswith('.') or not os.path.isdir(path):
            continue
        found[decode_name(name)] = path
    return found


def resolve_unit(source):
    """A dump directory, or a database directory (its newest good dump)."""
    if os.path.isfile(os.path.join(source, MANIFEST)):
        return source
    units = list_units(source)
    if units:
        return units[0]['path']
    raise EngineError('no good dump found at %s' % source,
                      hint='give a dump directory (with manifest.json) or a database directory under the destination')


def unit_name(db_dir, epoch):
    """A free dump directory name for this run's time stamp."""
    base = stamp(epoch)
    name, n = base, 1
    while os.path.exists(os.path.join(db_dir, name)):
        n += 1
        name = '%s-%d' % (base, n)
    return name


def now():
    return clock.now()
