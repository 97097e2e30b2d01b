# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgops.backup.backup_retention through main(): policy (check mode = dry run, diff) and keep marks."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.modules import backup_retention
from ansible_collections.pgops.backup.tests.unit.fakes import pgbackrest_fake, run_module
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.retention_fakes import history, info_text

NOW = 1795255200


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


def fulls(doc):
    return sorted(b['label'] for b in doc[0]['backup'] if b['type'] == 'full')


def test_policy_expires_by_set_with_diff(monkeypatch):
    doc = history(NOW, days=4, with_diff_incr=False)
    fake = pgbackrest_fake(info=info_text(doc)).on('expire')
    failed, result = run_module(monkeypatch, backup_retention, {'stanza': 'main', 'policy': {'daily': 2}}, fake)
    assert failed is False and result['changed'] is True
    assert result['expired'] == [{'repo': 1, 'set': fulls(doc)[0]}, {'repo': 1, 'set': fulls(doc)[1]}]
    assert result['diff']['before'].count('\n') == 4 and result['diff']['after'].count('\n') == 2
    assert result['commands'][-1] == ('/usr/bin/pgbackrest --stanza=main --set=%s --repo=1 --log-level-console=info '
                                      'expire' % fulls(doc)[1])


def test_check_mode_is_a_dry_run(monkeypatch):
    doc = history(NOW, days=4, with_diff_incr=False)
    fake = pgbackrest_fake(info=info_text(doc))
    failed, result = run_module(monkeypatch, backup_retention, {'stanza': 'main', 'policy': [{'every': 'day', 'keep': 3}]},
                                fake, check_mode=True)
    assert failed is False and result['changed'] is True and result['expired'] == []
    assert result['plans'][0]['expire_sets'] == [fulls(doc)[0]]
    assert 'expire' not in fake.pgbackrest_commands()


def test_keep_mark_and_refusal_without_reason(monkeypatch):
    doc = history(NOW, days=2, with_diff_incr=False)
    fake = pgbackrest_fake(info=info_text(doc)).on('annotate')
    failed, result = run_module(monkeypatch, backup_retention, {'stanza': 'main', 'keep_set': fulls(doc)[0],
                                                                'reason': 'audit', 'user': 'alice'}, fake)
    assert failed is False and result['changed'] is True
    assert result['diff']['after']['repo1'].startswith('alice at ')
    failed, result = run_module(monkeypatch, backup_retention, {'stanza': 'main', 'keep_set': fulls(doc)[0],
                                                                'user': 'alice'}, pgbackrest_fake(info=info_text(doc)))
    assert failed is True and 'a keep mark needs a reason' in result['msg']


def test_a_bad_policy_fails_before_anything_runs(monkeypatch):
    fake = pgbackrest_fake()
    failed, result = run_module(monkeypatch, backup_retention, {'stanza': 'main', 'policy': {'weekly': 'x'}}, fake)
    assert failed is True and 'keep must be a whole number' in result['msg']
    assert fake.pgbackrest_commands() == []


def test_a_dump_set_is_marked_once_released_and_check_mode_writes_nothing(monkeypatch, tmp_path):
    unit = tmp_path / 'app' / '20261121T021500Z'
    unit.mkdir(parents=True)
    mark = str(unit) + '.pgops-keep.json'
    params = {'dump_set': str(unit), 'reason': 'audit OPS-42', 'user': 'alice'}
    failed, result = run_module(monkeypatch, backup_retention, params, pgbackrest_fake(), check_mode=True)
    assert failed is False and result['changed'] is True and not os.path.exists(mark)
    failed, result = run_module(monkeypatch, backup_retention, params, pgbackrest_fake())
    assert failed is False and result['changed'] is True and result['diff']['before'] == ''
    assert result['marks'][0]['after'].startswith('alice at ') and result['marks'][0]['after'].endswith(': audit OPS-42')
    failed, result = run_module(monkeypatch, backup_retention, params, pgbackrest_fake())
    assert failed is False and result['changed'] is False  # the same mark again
    failed, result = run_module(monkeypatch, backup_retention, dict(params, release=True), pgbackrest_fake())
    assert failed is False and result['changed'] is True and result['marks'][0]['after'] is None
    assert not os.path.exists(mark)


def test_a_dump_set_that_is_no_set_is_refused(monkeypatch, tmp_path):
    failed, result = run_module(monkeypatch, backup_retention, {'dump_set': str(tmp_path), 'reason': 'r', 'user': 'a'},
                                pgbackrest_fake())
    assert failed is True and 'is not a dump set' in result['msg']


def test_policy_without_a_stanza_is_refused(monkeypatch):
    failed, result = run_module(monkeypatch, backup_retention, {'policy': {'daily': 2}}, pgbackrest_fake())
    assert failed is True and 'stanza' in result['msg']
