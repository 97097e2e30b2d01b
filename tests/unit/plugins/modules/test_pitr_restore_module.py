# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pitr_restore and pg_restore_point as Ansible runs them: check mode returns the plan and changes
nothing; a refusal fails with the window, the plan and the audit record."""

from __future__ import annotations

from ansible_collections.pgops.backup.plugins.modules import pg_restore_point, pitr_restore
from ansible_collections.pgops.backup.tests.unit.fakes import run_module
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import SECOND, PitrHost
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.test_pitr_preflight import commit_line

T = '2026-11-21 09:29:42.318497+00'


def host():
    fake = PitrHost()
    fake.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
        781, '0/0D019300', '2026-11-21 09:35:00.000001')
    return fake


def test_check_mode_returns_the_plan_and_changes_nothing(monkeypatch, tmp_path):
    fake = host()
    failed, result = run_module(monkeypatch, pitr_restore,
                                {'stanza': 'main', 'target_type': 'time', 'target': T, 'stop_cluster': True,
                                 'record_dir': str(tmp_path)}, fake, check_mode=True)
    assert not failed, result
    assert result['changed'] is True and result['status'] == 'planned'
    assert result['plan']['backup_set']['label'] == SECOND
    assert result['plan']['restore_command'][-1] == 'restore'
    assert result['commands'] and fake.mutating() == []
    assert list(tmp_path.iterdir()) == []


def test_refusal_reports_window_plan_status_and_record(monkeypatch, tmp_path):
    fake = host()
    failed, result = run_module(monkeypatch, pitr_restore,
                                {'stanza': 'main', 'target_type': 'time', 'target': '2026-11-21 09:00:00+00',
                                 'stop_cluster': True, 'record_dir': str(tmp_path)}, fake)
    assert failed and result['status'] == 'refused' and result['error_code'] == 'before-window'
    assert 'recoverable window: from 2026-11-21T09:20:09.000000Z' in result['msg']
    assert result['record'].endswith('-refused.json')
    assert fake.mutating() == []


def test_time_without_offset_fails_before_touching_the_host(monkeypatch, tmp_path):
    fake = host()
    failed, result = run_module(monkeypatch, pitr_restore,
                                {'stanza': 'main', 'target_type': 'time', 'target': '2026-11-21 09:29:42',
                                 'record_dir': str(tmp_path)}, fake)
    assert failed and 'no time zone' in result['msg']
    assert fake.calls == []


def test_absent_removes_nothing_that_does_not_exist(monkeypatch, tmp_path):
    fake = host()
    failed, result = run_module(monkeypatch, pitr_restore,
                                {'stanza': 'main', 'target_type': 'latest', 'destination': 'elsewhere',
                                 'scratch_name': 'forensics', 'state': 'absent'}, fake)
    assert not failed and result['changed'] is False
    assert result['scratch']['data_directory'] == '/var/lib/postgresql/pgops-scratch/forensics'


def test_restore_point_module_changed_only_when_created(monkeypatch, tmp_path):
    args = {'name': 'before_migration', 'stanza': 'main', 'registry_dir': str(tmp_path)}
    failed, first = run_module(monkeypatch, pg_restore_point, args, host())
    assert not failed and first['changed'] and first['restore_point']['archived']
    failed, second = run_module(monkeypatch, pg_restore_point, args, host())
    assert not failed and not second['changed'] and second['existing']


def test_restore_point_refuses_a_stanza_name_before_running_anything(monkeypatch, tmp_path):
    fake = host()
    failed, result = run_module(monkeypatch, pg_restore_point,
                                {'name': 'x', 'stanza': 'main; rm', 'registry_dir': str(tmp_path)}, fake)
    assert failed and result['msg'].startswith("invalid stanza name 'main; rm'")
    assert fake.calls == []


def test_restore_point_check_mode(monkeypatch, tmp_path):
    fake = host()
    failed, result = run_module(monkeypatch, pg_restore_point, {'name': 'x1', 'registry_dir': str(tmp_path)}, fake,
                                check_mode=True)
    assert not failed and result['changed'] and fake.mutating() == []
