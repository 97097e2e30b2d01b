# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.backup_health through main(): the metrics engine's numbers, breaches and rows."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import metrics, process
from ansible_collections.pgops.backup.plugins.modules import backup_health
from ansible_collections.pgops.backup.tests.unit.fakes import run_module
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.metrics_fakes import (
    FAILING, data_dir, host, write_record)


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


def args(tmp_path, **extra):
    base = {'objectives_file': str(tmp_path / 'monitoring.json'), 'record_dir': str(tmp_path / 'records'),
            'state_file': str(tmp_path / 'state.json')}
    base.update(extra)
    return base


def test_healthy_host(monkeypatch, tmp_path):
    fake = host(data_dir(tmp_path))
    failed, result = run_module(monkeypatch, backup_health, args(tmp_path, objectives={'backup_max_age': '2d'}), fake,
                                check_mode=True)
    assert failed is False and result['changed'] is False
    assert result['breaches'] == []
    assert result['health']['objectives']['backup_max_age'] == 172800
    assert result['health']['stanzas'][0]['repos'][0]['last']['full']['label'] == '20261121-091140F'
    row = result['rows'][0]
    assert (row['stanza'], row['status'], row['archiving'], row['drill'], row['dump']) == (
        'main', 'ok', 'ok (0 waiting, last %s ago)' % metrics.format_age(
            result['health']['clusters'][0]['last_archived_age']), '-', '-')
    assert result['metrics'].startswith('# HELP pgops_backup_metrics_last_run_timestamp_seconds')
    assert result['commands'] == ['/usr/bin/pg_lsclusters --no-header', '/usr/bin/psql -X -A -t -q -v ON_ERROR_STOP=1 '
                                  '-F \x1f -R \x1e -p 5432 -d dbname=\'postgres\' -c ' + metrics.ARCHIVER_SQL,
                                  '/usr/bin/pgbackrest --output=json info']


def test_breaches_from_the_objectives_file_and_overrides(monkeypatch, tmp_path):
    (tmp_path / 'monitoring.json').write_text(json.dumps({'wal_ready_max': 0, 'backup_max_age': '10m'}))
    (tmp_path / 'state.json').write_text(json.dumps({'dump:nightly': {'finished_epoch': 1, 'size_bytes': 5}}))
    write_record(tmp_path / 'records', 'pg-dump-nightly', status='failed', mode='dump', destination='/d',
                 finished_epoch=1795255000)
    ready = [('00000001000000000000000A', 30)]
    fake = host(data_dir(tmp_path, ready=ready), row=FAILING)
    failed, result = run_module(monkeypatch, backup_health, args(tmp_path, objectives={'full_backup_max_age': 'off'}),
                                fake)
    assert failed is False
    assert [b['objective'] for b in result['breaches']] == ['backup_max_age', 'archiving', 'wal_ready_max',
                                                            'dump_failed', 'dump_max_age']
    assert result['rows'][0]['archiving'] == 'FAILING (3 failed, 1 waiting)'
    assert result['rows'][0]['dump'] == 'FAILED nightly'
    # Read-only: the state file is not written.
    assert json.loads((tmp_path / 'state.json').read_text()) == {'dump:nightly': {'finished_epoch': 1, 'size_bytes': 5}}


def test_bad_objective_fails_the_module(monkeypatch, tmp_path):
    failed, result = run_module(monkeypatch, backup_health, args(tmp_path, objectives={'backup_max_age': 'later'}),
                                host(data_dir(tmp_path)))
    assert failed is True
    assert result['msg'] == "'later' is not a duration: use seconds or a number with s, m, h, d or w (e.g. 26h)"
