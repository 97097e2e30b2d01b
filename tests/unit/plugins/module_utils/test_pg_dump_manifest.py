# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manifest logic: what a restore must find, checksums, the on-disk layout."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest as layout
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as fakes

SESSION = {'snapshot': 'S-1', 'server_version': '17.12', 'server_version_num': 170012,
           'database': {'name': 'appdb', 'encoding': 'UTF8'}}


def manifest(exclude=(), large_objects=3, lo_in_dump=True, tables=None):
    tables = tables if tables is not None else fakes.DEFAULT_TABLES
    counts = {'tables': tables, 'large_objects': large_objects, 'count_seconds': 0.5}
    data = set(t['oid'] for t in tables if t['kind'] == 'table' and t['name'] not in exclude)
    toc = {'tables': set(t['oid'] for t in tables), 'table_data': data, 'large_objects': lo_in_dump}
    files = [{'path': 'appdb.dump', 'size': 10, 'sha256': 'a' * 64, 'role': 'dump'}]
    return layout.build_manifest('appdb', SESSION, counts, toc, files, {'format': 'custom', 'dump_path': 'appdb.dump'},
                                 {'pg_dump': 'pg_dump (PostgreSQL) 17.12'},
                                 {'started': 1795000000.0, 'finished': 1795000012.5, 'dump_seconds': 11.0})


def restored(overrides=None, extra=(), drop=(), large_objects=3):
    tables = []
    for t in fakes.DEFAULT_TABLES:
        if t['name'] in drop:
            continue
        t = dict(t)
        if overrides and t['name'] in overrides:
            t['rows'] = overrides[t['name']]
        tables.append(t)
    tables.extend(extra)
    return {'tables': tables, 'large_objects': large_objects}


def test_manifest_records_versions_timing_and_sizes():
    m = manifest()
    assert m['server_version_num'] == 170012 and m['pg_dump_version'].endswith('17.12')
    assert m['duration_seconds'] == 12.5 and m['dump_seconds'] == 11.0 and m['count_seconds'] == 0.5
    assert m['started_at'] == '2026-11-18T11:06:40Z' and m['finished_epoch'] == 1795000012.5
    assert m['size_bytes'] == 10 and m['table_count'] == 5 and m['rows_total'] == 1108
    json.dumps(m)  # serialisable


def test_excluded_table_data_is_expected_empty_after_restore():
    m = manifest(exclude=('cache_junk',))
    assert m['rows_total'] == 1103
    expected = layout.expected_counts(m)
    assert expected[('public', 'cache_junk')] == 0
    assert expected[('Sales \u00dc', 'Mixed Case Table')] == 100
    assert ('public', 'measurements') not in expected  # partitioned: rows live in the partitions


def test_a_faithful_restore_matches():
    result = layout.compare_counts(manifest(), restored())
    assert result['matches'] is True and result['mismatches'] == []
    assert result['tables_compared'] == 5 and result['rows_total'] == 1108


def test_exclude_table_data_restore_matches_with_empty_table():
    result = layout.compare_counts(manifest(exclude=('cache_junk',)), restored({'cache_junk': 0}))
    assert result['matches'] is True


@pytest.mark.parametrize('kwargs,problem', [
    ({'overrides': {'measurements_2025': 599}}, 'row count differs'),
    ({'overrides': {'cache_junk': 5}, 'drop': ()}, None),
    ({'drop': ('with "quote"',)}, 'missing after restore'),
    ({'extra': [fakes.table(1, 'stray', 0)]}, 'not in the manifest'),
    ({'large_objects': 2}, 'large object count differs'),
])
def test_differences_are_reported(kwargs, problem):
    result = layout.compare_counts(manifest(), restored(**kwargs))
    if problem is None:
        assert result['matches']
    else:
        assert not result['matches']
        assert [m['problem'] for m in result['mismatches']] == [problem]


def test_large_objects_not_in_the_dump_are_not_compared():
    result = layout.compare_counts(manifest(lo_in_dump=False), restored(large_objects=0))
    assert result['matches'] is True


def test_a_stale_materialized_view_is_a_warning_not_a_mismatch():
    view = fakes.table(17000, 'mv', 7, kind='materialized view')
    m = manifest(tables=fakes.DEFAULT_TABLES + [view])
    result = layout.compare_counts(m, restored(extra=[dict(view, rows=9)]))
    assert result['matches'] is True and 'mv' in result['warnings'][0]


def test_checksums_detect_any_change(tmp_path):
    (tmp_path / 'appdb.dump').write_bytes(b'archive bytes')
    files = layout.describe_files(str(tmp_path), ['appdb.dump'], 'dump')
    assert files[0] == {'path': 'appdb.dump', 'size': 13, 'role': 'dump',
                        'sha256': hashlib.sha256(b'archive bytes').hexdigest()}
    assert layout.verify_files(str(tmp_path), files) == []
    (tmp_path / 'appdb.dump').write_bytes(b'archive bytez')
    assert 'sha256' in layout.verify_files(str(tmp_path), files)[0]
    (tmp_path / 'appdb.dump').write_bytes(b'short')
    assert 'bytes' in layout.verify_files(str(tmp_path), files)[0]
    os.unlink(str(tmp_path / 'appdb.dump'))
    assert layout.verify_files(str(tmp_path), files) == ['appdb.dump is missing']


@pytest.mark.parametrize('name', ['appdb', 'Reports \u00dc', '..', '.', 'a/b', '100%', 'x~y', 'Mixed Case', '\u65e5\u672c'])
def test_database_names_round_trip_to_safe_directory_names(name):
    encoded = layout.encode_name(name)
    assert '/' not in encoded and not encoded.startswith('.') and encoded not in ('.', '..')
    assert layout.decode_name(encoded) == name


def write_unit(db_dir, name, epoch, status='ok', fmt=layout.MANIFEST_FORMAT):
    path = os.path.join(db_dir, name)
    os.makedirs(path)
    with open(os.path.join(path, layout.MANIFEST), 'w') as handle:
        json.dump({'manifest_format': fmt, 'status': status, 'finished_epoch': epoch, 'database': 'appdb'}, handle)
    return path


def test_only_good_units_are_listed_newest_first(tmp_path):
    db_dir = str(tmp_path)
    write_unit(db_dir, '20261101T000000Z', 100)
    write_unit(db_dir, '20261103T000000Z', 300)
    write_unit(db_dir, '20261102T000000Z', 200)
    write_unit(db_dir, '20261104T000000Z', 400, status='failed')
    write_unit(db_dir, '20261105T000000Z', 500, fmt=99)
    write_unit(db_dir, '.partial-20261106T000000Z-1', 600)
    write_unit(db_dir, 'my-copy', 700)
    os.makedirs(os.path.join(db_dir, '20261107T000000Z'))  # no manifest
    assert [u['name'] for u in layout.list_units(db_dir)] == ['20261103T000000Z', '20261102T000000Z', '20261101T000000Z']
    assert layout.resolve_unit(db_dir).endswith('20261103T000000Z')
    assert layout.resolve_unit(os.path.join(db_dir, '20261101T000000Z')).endswith('20261101T000000Z')
    with pytest.raises(EngineError):
        layout.resolve_unit(str(tmp_path / 'nothing'))


def test_unit_names_never_collide(tmp_path):
    first = layout.unit_name(str(tmp_path), 1795000000)
    assert first == '20261118T110640Z'
    os.mkdir(str(tmp_path / first))
    assert layout.unit_name(str(tmp_path), 1795000000) == '20261118T110640Z-2'
    assert layout.STAMP_RE.match('20261118T110640Z-2')
