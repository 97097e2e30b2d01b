# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup window`: the record the metrics read, the gap memory, what a person reads."""

from __future__ import annotations

import functools
import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli, cli_window, process
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import PitrHost


@pytest.fixture
def fake(monkeypatch):
    host = PitrHost()
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)
    monkeypatch.setattr(cli_window, 'Runner', functools.partial(Runner, run=host, which=host.which))
    return host


def window(tmp_path, *extra):
    return cli.main(['--record-dir', str(tmp_path / 'records')] + list(extra) + [
        'window', '--state-file', str(tmp_path / 'window-state.json')])


def drop_segment(host, name):
    directory = name[:16]
    listing = json.loads(host.listings[directory])
    for key in [k for k in listing if k.startswith(name)]:
        del listing[key]
    host.listings[directory] = json.dumps(listing)


def test_prints_the_window_and_writes_the_record(fake, tmp_path, capsys):
    assert window(tmp_path) == 0
    out, _err = capsys.readouterr()
    assert out.startswith('stanza main repo1: recoverable from 2026-11-21T09:20:09')
    assert '(end of backup 20261121-092006F)' in out and 'segment 00000005000000000000000D' in out
    record = json.loads((tmp_path / 'records' / 'recovery-window.json').read_text())
    assert record['status'] == 'ok' and record['windows'][0]['gaps'] == [] and record['checked_epoch']
    assert json.loads((tmp_path / 'window-state.json').read_text()) == {'gaps': {'main/1': {}}}


def test_a_gap_is_printed_with_what_to_do_and_remembered(fake, tmp_path, capsys):
    drop_segment(fake, '000000020000000000000005')
    assert window(tmp_path) == 0  # a gap is a finding for the metrics, not a failure of the check
    out, _err = capsys.readouterr()
    assert 'gap: 1 segment(s) missing on timeline 2, 000000020000000000000005..000000020000000000000005' in out
    assert 'BLOCKING: take a full backup once the cause is fixed' in out
    assert 'recoverable from 2026-11-21T09:29:42' in out  # the window restarts at the second full backup
    seen = json.loads((tmp_path / 'window-state.json').read_text())['gaps']['main/1']
    assert list(seen) == ['000000020000000000000005']
    assert window(tmp_path, '--json') == 0
    record = json.loads(capsys.readouterr()[0])
    assert record['windows'][0]['gaps'][0]['first_seen'] == seen['000000020000000000000005']


def test_an_unreadable_repository_fails_the_check_and_says_why(fake, tmp_path, capsys):
    answer = fake._pgbackrest

    def repo_ls_fails(argv, env, data):
        if 'repo-ls' in argv:
            return 41, '', 'P00  ERROR: [041]: unable to list file info for path\n'
        return answer(argv, env, data)
    fake._pgbackrest = repo_ls_fails
    assert window(tmp_path) == 1
    out, _err = capsys.readouterr()
    assert out.startswith('stanza main repo1: window not computed: pgbackrest repo-ls failed')
    record = json.loads((tmp_path / 'records' / 'recovery-window.json').read_text())
    assert record['status'] == 'failed' and record['windows'][0]['ok'] is False
    assert record['error'].startswith('main/1: pgbackrest repo-ls failed')


def test_no_stanza_is_said(fake, tmp_path, capsys):
    fake.info = []
    assert window(tmp_path) == 0
    assert capsys.readouterr()[0] == 'no stanza\n'


def test_a_host_without_pgbackrest_has_no_window_and_does_not_fail(fake, tmp_path, capsys, monkeypatch):
    def which(name):
        if name == 'pgbackrest':
            return None
        return fake.which(name)
    monkeypatch.setattr(cli_window, 'Runner', functools.partial(Runner, run=fake, which=which))
    assert window(tmp_path) == 0
    assert 'pgBackRest is not installed here' in capsys.readouterr()[1]
    assert json.loads((tmp_path / 'records' / 'recovery-window.json').read_text())['status'] == 'skipped'
