# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup pitr ...`: the same engine from a shell, with the fake host as its process boundary."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli, cli_pitr
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import SECOND, PitrHost, commit_line

T = '2026-11-21 09:29:42.318497+00'


@pytest.fixture
def host(monkeypatch, tmp_path):
    fake = PitrHost()
    fake.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
        781, '0/0D019300', '2026-11-21 09:35:00.000001')

    def runner(run_as=None, stream=None):
        return Runner(run=fake, which=fake.which, run_as=run_as, stream=stream)
    monkeypatch.setattr(cli_pitr, 'Runner', runner)
    fake.record_dir = str(tmp_path / 'records')
    return fake


def main(host, *args):
    return cli.main(['--record-dir', host.record_dir] + list(args))


def test_plan_prints_the_plan_and_changes_nothing(host, capsys):
    assert main(host, 'pitr', 'plan', '--stanza', 'main', '--time', T, '--registry-dir', '/nonexistent') == 0
    out = capsys.readouterr().out
    assert 'backup set:  %s' % SECOND in out
    assert 'ok  wal_continuity' in out and '1. stop postgresql@17-main.service (REFUSED unless stop_cluster=true)' in out
    assert host.mutating() == []


def test_plan_json(host, capsys):
    assert main(host, '--json', 'pitr', 'plan', '--stanza', 'main', '--xid', '790') == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan['wal_switch']['needed'] is True


def test_runs_as_postgres_by_default(host):
    main(host, '--quiet', 'pitr', 'plan', '--stanza', 'main', '--time', T)
    assert all(c['user'] == 'postgres' for c in host.ran('/usr/bin/pgbackrest'))


def test_in_place_restore_needs_the_host_name(host, capsys):
    assert main(host, 'pitr', 'restore', '--stanza', 'main', '--time', T, '--stop-cluster') == 1
    assert "repeat this host's name with --confirm" in capsys.readouterr().err
    assert host.mutating() == []


def test_exactly_one_target(host, capsys):
    assert main(host, 'pitr', 'plan', '--stanza', 'main', '--latest', '--xid', '5') == 1
    assert 'give exactly one target' in capsys.readouterr().err


def test_refusal_exit_code_and_message(host, capsys):
    assert main(host, 'pitr', 'plan', '--stanza', 'main', '--time', '2020-01-01 00:00:00+00') == 1
    assert 'REFUSED: the target is before the end of the oldest usable backup' in capsys.readouterr().err


def test_scratch_list(host, capsys):
    host.dirs['/var/lib/postgresql/pgops-scratch'] = ['a.pgops-scratch.json', 'a']
    assert main(host, 'pitr', 'scratch-list') == 0
    assert capsys.readouterr().out == 'a\n'
