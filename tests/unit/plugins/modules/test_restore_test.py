# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.restore_test through main(): the plan in check mode, the report, a failure's message."""

from __future__ import annotations

import json

from ansible_collections.pgops.backup.plugins.modules import restore_test
from ansible_collections.pgops.backup.tests.unit.fakes import run_module
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import restore_drill_fakes as fakes

ORDERS = 'SELECT count(*) FROM orders'


def args(tmp_path, **extra):
    out = {'stanza': 'main', 'record_dir': str(tmp_path / 'records')}
    out.update(extra)
    return out


def test_check_mode_returns_the_plan(monkeypatch, tmp_path):
    host = fakes.DrillHost()
    failed, result = run_module(monkeypatch, restore_test, args(tmp_path), host, check_mode=True)
    assert failed is False and result['status'] == 'planned'
    assert result['backup_label'] == fakes.NEWEST and result['scratch']['port'] == 5433
    assert result['steps'] and fakes.mutating(host) == []
    assert not (tmp_path / 'records').exists()


def test_a_drill_returns_the_report_and_writes_the_record(monkeypatch, tmp_path):
    host = fakes.DrillHost()
    host.queries[ORDERS] = (0, fakes.rows(['1000']))
    failed, result = run_module(monkeypatch, restore_test, args(tmp_path, sql_checks=[
        {'name': 'orders', 'query': ORDERS, 'expected': 1000, 'database': 'appdb'}]), host)
    assert failed is False and result['changed'] is True and result['status'] == 'ok'
    assert result['failed_checks'] == [] and result['lines'][0].endswith(': PASSED')
    assert any(c['name'] == 'sql:orders' and c['status'] == 'pass' for c in result['checks'])
    assert result['scratch']['state'] == 'removed'
    record = json.loads((tmp_path / 'records' / 'restore_test-pgbackrest.json').read_text())
    assert record['status'] == 'ok' and record['backup_label'] == fakes.NEWEST


def test_a_failed_drill_fails_the_task_naming_the_check(monkeypatch, tmp_path):
    host = fakes.DrillHost()
    host.queries[ORDERS] = (0, fakes.rows(['1000']))
    failed, result = run_module(monkeypatch, restore_test, args(tmp_path, name='weekly', sql_checks=[
        {'name': 'orders', 'query': ORDERS, 'expected': '999'}]), host)
    assert failed is True and result['status'] == 'failed'
    assert result['msg'].startswith("restore drill weekly failed: sql:orders: expected '999', got '1000'")
    assert result['failed_checks'] == ['sql:orders'] and result['lines'][0].endswith(': FAILED')


def test_a_pgbackrest_drill_needs_the_stanza(monkeypatch, tmp_path):
    failed, result = run_module(monkeypatch, restore_test, {'record_dir': str(tmp_path)}, fakes.DrillHost())
    assert failed is True and 'stanza' in result['msg']


def test_scratch_reserve_refuses_a_drill_that_would_eat_into_it(monkeypatch, tmp_path):
    host = fakes.DrillHost()
    failed, result = run_module(monkeypatch, restore_test, args(tmp_path, scratch_reserve='90%'), host)
    assert failed is True and 'below the reserve of' in result['msg'] and '90% of the file system' in result['msg']
    assert fakes.mutating(host) == []
    failed, result = run_module(monkeypatch, restore_test, args(tmp_path, scratch_reserve='some'), fakes.DrillHost())
    assert failed is True and "scratch reserve 'some' is not a size" in result['msg']
