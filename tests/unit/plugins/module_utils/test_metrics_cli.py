# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup metrics`: the textfile, the state of last successes, exit codes and stderr.

cli_metrics builds its Runner itself; the tests give that Runner the fake process boundary."""

from __future__ import annotations

import functools
import json
import os
import stat

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli, cli_metrics, process
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.metrics_fakes import (
    FAILING, data_dir, host, write_record)


@pytest.fixture
def use(monkeypatch):
    def _use(fake, root=False):
        monkeypatch.setattr(process.os, 'geteuid', lambda: 0 if root else 1000)
        monkeypatch.setattr(cli_metrics, 'Runner', functools.partial(Runner, run=fake, which=fake.which))
        return fake
    return _use


@pytest.fixture
def paths(tmp_path):
    textfile = tmp_path / 'node-exporter'
    textfile.mkdir()
    objectives = tmp_path / 'monitoring.json'
    objectives.write_text(json.dumps({'wal_ready_max': 1, 'backup_max_age': '90m'}))
    return {'textfile': textfile, 'objectives': objectives, 'state': tmp_path / 'metrics-state.json',
            'records': tmp_path / 'records'}


def run(paths, *extra, **kwargs):
    argv = ['--record-dir', str(paths['records'])] + list(kwargs.get('before', [])) + [
        'metrics', '--textfile-dir', str(paths['textfile']), '--objectives', str(paths['objectives']),
        '--state-file', str(paths['state'])] + list(extra)
    return cli.main(argv)


def test_writes_the_textfile_and_the_state(use, paths, tmp_path, capsys):
    ready = [('00000001000000000000000A', 60), ('00000001000000000000000B', 30)]
    fake = use(host(data_dir(tmp_path, ready=ready), row=FAILING), root=True)
    write_record(paths['records'], 'pg-dump-nightly', status='ok', mode='dump', destination='/d',
                 finished_epoch=1795250000, duration_seconds=2, size_bytes=100)
    assert run(paths) == 0
    out, err = capsys.readouterr()
    assert out == ''
    path = paths['textfile'] / 'pgops_backup.prom'
    text = path.read_text()
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644
    assert os.listdir(str(paths['textfile'])) == ['pgops_backup.prom']
    lines = text.splitlines()
    assert 'pgops_backup_archiver_failing{stanza="main",cluster="17/main"} 1' in lines
    assert 'pgops_backup_wal_ready_segments{stanza="main",cluster="17/main"} 2' in lines
    assert 'pgops_backup_wal_ready_max_segments{stanza="main",cluster="17/main"} 1' in lines
    assert 'pgops_backup_last_backup_max_age_seconds{stanza="main",repo="1",type="any"} 5400' in lines
    assert 'pgops_backup_dump_last_success_size_bytes{dump="nightly"} 100' in lines
    samples = len([line for line in lines if not line.startswith('#')])
    assert err == 'pgops-backup: wrote %d samples to %s\n' % (samples, path)
    assert json.loads(paths['state'].read_text()) == {
        'dump:nightly': {'duration_seconds': 2, 'finished_epoch': 1795250000, 'size_bytes': 100}}
    # Root runs pgBackRest and psql as postgres.
    assert {tuple(argv[:4]) for argv in fake.argvs} == {('/usr/bin/runuser', '-u', 'postgres', '--')}


def test_print_to_stdout_and_json(use, paths, tmp_path, capsys):
    use(host(data_dir(tmp_path)))
    assert cli.main(['--quiet', '--json', 'metrics', '--textfile-dir', '-', '--objectives', str(paths['objectives']),
                     '--state-file', '']) == 0
    out, err = capsys.readouterr()
    assert err == ''
    snapshot_text, exposition = out.split('\n}\n', 1)
    snap = json.loads(snapshot_text + '\n}')
    assert snap['stanzas'][0]['name'] == 'main' and snap['objectives']['wal_ready_max'] == 1
    assert exposition.startswith('# HELP pgops_backup_metrics_last_run_timestamp_seconds ')
    assert 'pgops_backup_stanza_status_code{stanza="main"} 0\n' in exposition
    assert os.listdir(str(paths['textfile'])) == []


def test_a_source_that_fails_is_reported_and_the_file_still_written(use, paths, tmp_path, capsys):
    use(host(data_dir(tmp_path), info_rc=103))
    assert run(paths) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith('pgops-backup: reading pgbackrest failed: pgbackrest info failed with pgBackRest '
                             'error [103] (repo-invalid)')
    assert err[-1].startswith('pgops-backup: wrote ')
    assert 'pgops_backup_collector_success{source="pgbackrest"} 0' in (
        paths['textfile'] / 'pgops_backup.prom').read_text().splitlines()


def test_unwritable_textfile_directory_fails(use, paths, tmp_path, capsys):
    use(host(data_dir(tmp_path)))
    paths['textfile'] = tmp_path / 'missing'
    assert run(paths) == 1
    err = capsys.readouterr().err
    assert 'pgops-backup: FAILED: cannot write the metrics to %s: ' % paths['textfile'] in err


@pytest.mark.parametrize('name', ['pgops_backup.txt', '../pgops_backup.prom'])
def test_file_name_must_end_in_prom(use, paths, tmp_path, capsys, name):
    fake = use(host(data_dir(tmp_path)))
    assert run(paths, '--file-name', name) == 2
    assert 'ending in .prom' in capsys.readouterr().err
    assert fake.calls == []


def test_bad_objectives_file_fails_before_running_anything(use, paths, tmp_path, capsys):
    fake = use(host(data_dir(tmp_path)))
    paths['objectives'].write_text(json.dumps({'backup_max_age': 'soon'}))
    assert run(paths) == 2
    assert "'soon' is not a duration" in capsys.readouterr().err
    assert fake.calls == []


def test_only_named_stanzas(use, paths, tmp_path):
    use(host(data_dir(tmp_path)))
    assert run(paths, '--stanza', 'other') == 0
    assert 'pgops_backup_stanza_status_code' not in (paths['textfile'] / 'pgops_backup.prom').read_text()
