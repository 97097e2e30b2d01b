# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Job records: atomic JSON files that monitoring reads."""

from __future__ import annotations

import datetime
import json
import os
import re
import stat

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.records import JobRecord, utc_now, write_json_atomic

UTC_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')


def test_write_json_atomic(tmp_path):
    path = tmp_path / 'job.json'
    write_json_atomic(str(path), {'b': 1, 'a': [1, 2]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
    assert os.listdir(str(tmp_path)) == ['job.json']


def test_write_json_atomic_replaces_and_applies_mode(tmp_path):
    path = tmp_path / 'job.json'
    path.write_text('old')
    write_json_atomic(str(path), {'when': datetime.date(2026, 11, 21)}, mode=0o600)
    assert json.loads(path.read_text()) == {'when': '2026-11-21'}
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'job.json'
    path.write_text('{"status": "ok"}\n')
    loop = {}
    loop['self'] = loop
    with pytest.raises(ValueError):
        write_json_atomic(str(path), loop)
    assert path.read_text() == '{"status": "ok"}\n'
    assert os.listdir(str(tmp_path)) == ['job.json']


def test_utc_now_format():
    assert UTC_RE.match(utc_now())


def test_job_record_written_on_finish(tmp_path):
    old_umask = os.umask(0o022)
    try:
        _job_record_written_on_finish(tmp_path)
    finally:
        os.umask(old_umask)


def _job_record_written_on_finish(tmp_path):
    record_dir = tmp_path / 'records' / 'nested'
    record = JobRecord('pgbackrest-backup-main-incr', str(record_dir), stanza='main')
    assert record.data['status'] == 'running'
    data = record.finish('ok', label='20261121-091140F', commands=['pgbackrest info'])
    path = record_dir / 'pgbackrest-backup-main-incr.json'
    assert json.loads(path.read_text()) == data
    assert data['job'] == 'pgbackrest-backup-main-incr' and data['status'] == 'ok'
    assert data['stanza'] == 'main' and data['label'] == '20261121-091140F'
    assert UTC_RE.match(data['started_at']) and UTC_RE.match(data['finished_at'])
    assert isinstance(data['finished_epoch'], int) and data['duration_seconds'] >= 0
    assert stat.S_IMODE(os.stat(str(record_dir)).st_mode) == 0o750


def test_job_record_fields_from_finish_override(tmp_path):
    record = JobRecord('check-main', str(tmp_path), status='ignored', stanza='main')
    data = record.finish('failed', error='boom', stanza='main2')
    assert (data['status'], data['error'], data['stanza']) == ('failed', 'boom', 'main2')


def test_job_record_without_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = JobRecord('notify', None).finish('ok')
    assert data['status'] == 'ok'
    assert os.listdir(str(tmp_path)) == []
