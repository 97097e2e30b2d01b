# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped Prometheus alert rules and Grafana dashboard, checked with promtool.

promtool comes from Debian's `prometheus` package, which tests/utils/setup.sh installs: a missing
promtool fails these tests rather than skipping them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.pgops.backup.plugins.module_utils import metrics, process
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.metrics_fakes import (
    FAILING, NOW, data_dir, host, write_record)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FILES = os.path.join(ROOT, 'roles', 'monitoring', 'files')
RULES = os.path.join(FILES, 'pgops-backup.rules.yml')
DASHBOARD = os.path.join(FILES, 'pgops-backup-dashboard.json')
RULE_TESTS = os.path.join(ROOT, 'tests', 'unit', 'prometheus', 'pgops-backup.rules.test.yml')
METRIC_RE = re.compile(r'\bpgops_backup_[a-z_]+\b')


def promtool(*argv, **kwargs):
    binary = shutil.which('promtool')
    assert binary, 'promtool is missing: run tests/utils/setup.sh (it installs the Debian prometheus package)'
    return subprocess.run([binary] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, **kwargs)


def test_rules_are_valid():
    result = promtool('check', 'rules', RULES)
    assert result.returncode == 0, result.stdout
    assert 'SUCCESS: 20 rules found' in result.stdout


def test_rule_unit_tests_pass():
    result = promtool('test', 'rules', RULE_TESTS)
    assert result.returncode == 0, result.stdout
    assert 'SUCCESS' in result.stdout


def test_every_alert_has_a_unit_test():
    with open(RULES) as handle:
        alerts = {r['alert'] for g in yaml.safe_load(handle)['groups'] for r in g['rules']}
    with open(RULE_TESTS) as handle:
        tested = {t['alertname'] for case in yaml.safe_load(handle)['tests'] for t in case['alert_rule_test']
                  if t.get('exp_alerts')}
    assert alerts == tested


def test_rules_and_dashboard_use_only_metrics_the_engine_writes():
    with open(RULES) as handle:
        used = set(METRIC_RE.findall(handle.read()))
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    exprs = [t['expr'] for p in dashboard['panels'] for t in p.get('targets', [])]
    exprs += [v['definition'] for v in dashboard['templating']['list'] if v.get('definition')]
    used |= set(METRIC_RE.findall(' '.join(exprs)))
    assert used - set(metrics.FAMILY_NAMES) == set()
    assert len(dashboard['panels']) == 30 and dashboard['uid'] == 'pgops-backup-health'


def test_exposition_passes_promtool_check_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)
    ready = [('00000001000000000000000A', 60)]
    fake = host(data_dir(tmp_path, ready=ready), row=FAILING, info='info-mixed-2.55.1.json')
    records = tmp_path / 'records'
    write_record(records, 'pg-dump-nightly', status='ok', mode='dump', destination='/d', finished_epoch=NOW - 10,
                 duration_seconds=1.5, size_bytes=10)
    write_record(records, 'restore_test-main', status='ok', finished_epoch=NOW - 20, duration_seconds=30)
    write_record(records, 'pgbackrest-backup-main-incr', status='failed', finished_epoch=NOW - 5, duration_seconds=3)
    snap = metrics.collect(Runner(run=fake, which=fake.which), record_dir=str(records), now=NOW)
    text = metrics.render(snap)
    assert len(text.splitlines()) > 100
    result = promtool('check', 'metrics', input=text)
    assert result.returncode == 0 and result.stdout == '', result.stdout


@pytest.mark.parametrize('bad', ['a{b="x} 1\n', '# TYPE a gauge\n# TYPE a gauge\na 1\n'])
def test_promtool_check_metrics_does_reject_bad_input(bad):
    assert promtool('check', 'metrics', input=bad).returncode != 0
