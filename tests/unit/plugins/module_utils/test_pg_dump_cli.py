# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup dump` and `pgops-backup restore-dump`: job files, records, exit codes, secrets."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import signal

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli, cli_dump
from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest as layout
from ansible_collections.pgops.backup.plugins.module_utils import dump_restore as restore_engine
from ansible_collections.pgops.backup.plugins.module_utils import pg_dump as engine
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as fakes

SECRET = 'cli-test-passphrase-0099'


@pytest.fixture
def host(monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)  # as under systemd: User=postgres
    fake = fakes.FakeHost(databases=['appdb'])
    monkeypatch.setattr(cli_dump, 'Runner', functools.partial(Runner, run=fake, which=fake.which))
    made = fakes.Sessions()
    monkeypatch.setattr(engine, 'session_factory', lambda *a, **kw: made)
    monkeypatch.setattr(restore_engine, 'session_factory', lambda *a, **kw: made)
    fake.sessions = made
    yield fake
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run(tmp_path, *argv):
    return cli.main(['--quiet', '--json', '--record-dir', str(tmp_path / 'records'), '--run-as', 'postgres']
                    + list(argv))


def record(tmp_path, name):
    return json.loads((tmp_path / 'records' / ('%s.json' % name)).read_text())


def job_file(tmp_path, **settings):
    path = tmp_path / 'job.json'
    data = {'job': 'nightly', 'destination': str(tmp_path / 'dumps'), 'exclude_table_data': ['cache_*'],
            'retention_count': 2}
    data.update(settings)
    path.write_text(json.dumps(data))
    return str(path)


def test_dump_from_a_job_file_writes_record_and_manifest(host, tmp_path, capsys):
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path)) == 0
    data = record(tmp_path, 'pg-dump-nightly')
    assert data['status'] == 'ok' and data['databases'] == ['appdb'] and data['failed'] == []
    assert data['dumps'][0]['rows_total'] == 1108 and data['compression'] == 'zstd'
    assert json.loads(capsys.readouterr().out)['status'] == 'ok'
    (argv,) = [a for a in host.argvs('pg_dump') if any(x.startswith('--file=') for x in a)]
    assert '--exclude-table-data=cache_*' in argv
    assert layout.list_units(str(tmp_path / 'dumps' / 'appdb'))[0]['manifest']['job'] == 'nightly'


def test_flags_override_the_job_file(host, tmp_path):
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path), '--format', 'directory', '--jobs', '2',
               '--option=--no-comments') == 0
    (argv,) = [a for a in host.argvs('pg_dump') if any(x.startswith('--file=') for x in a)]
    assert '--format=directory' in argv and '--jobs=2' in argv and '--no-comments' in argv


def test_a_passphrase_in_the_job_file_is_refused(host, tmp_path, capsys):
    path = job_file(tmp_path, passphrase=SECRET)
    assert cli.main(['--record-dir', str(tmp_path / 'records'), 'dump', '--job-file', path]) == 2
    err = capsys.readouterr().err
    assert 'unknown keys: passphrase' in err and SECRET not in err
    assert host.calls == []


def test_failure_exit_1_with_the_error_in_the_record(host, tmp_path):
    host.when(lambda argv: os.path.basename(argv[0]) == 'pg_dump' and any(a.startswith('--file=') for a in argv),
              lambda argv, env, data: (-9, '', ''))
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path)) == 1
    data = record(tmp_path, 'pg-dump-nightly')
    assert data['status'] == 'failed' and data['failed'][0]['database'] == 'appdb'
    assert 'rc=-9' in data['error']
    assert os.listdir(str(tmp_path / 'dumps' / 'appdb')) == []


def test_a_locked_destination_is_skipped(host, tmp_path):
    os.makedirs(str(tmp_path / 'dumps'))
    with open(str(tmp_path / 'dumps' / layout.LOCK_FILE), 'a+') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path)) == 0
    assert record(tmp_path, 'pg-dump-nightly')['status'] == 'skipped'


def test_encrypted_dump_and_restore_with_a_passphrase_file(host, tmp_path):
    secret = tmp_path / 'passphrase'
    secret.write_text(SECRET + '\n')
    os.chmod(str(secret), 0o644)
    path = job_file(tmp_path, encrypt=True, passphrase_file=str(secret))
    assert run(tmp_path, 'dump', '--job-file', path) == 1  # readable by others: refused
    assert 'chmod 600' in record(tmp_path, 'pg-dump-nightly')['error']
    os.chmod(str(secret), 0o600)
    assert run(tmp_path, 'dump', '--job-file', path) == 0
    assert all(c['data'] == SECRET for c in host.calls if os.path.basename(c['argv'][0]) == 'gpg')
    assert run(tmp_path, 'restore-dump', '--source', str(tmp_path / 'dumps' / 'appdb'), '--target-database', 'copy',
               '--passphrase-file', str(secret), '--no-owner') == 0
    data = record(tmp_path, 'pg-dump-restore-copy')
    assert data['status'] == 'ok' and data['matches'] is True
    everything = json.dumps([c['argv'] for c in host.calls]) + (tmp_path / 'records').joinpath(
        'pg-dump-nightly.json').read_text() + json.dumps(data)
    assert SECRET not in everything


def test_passphrase_from_an_environment_variable(host, tmp_path, monkeypatch):
    monkeypatch.setenv('DUMP_SECRET', SECRET)
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path, encrypt=True, passphrase_env='DUMP_SECRET')) == 0
    assert [c['data'] for c in host.calls if os.path.basename(c['argv'][0]) == 'gpg'] == [SECRET, SECRET]
    monkeypatch.delenv('DUMP_SECRET')
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path, encrypt=True, passphrase_env='DUMP_SECRET')) == 1


def test_prune_only_and_dry_run(host, tmp_path, capsys):
    for _run in range(3):
        assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path, retention_count=0)) == 0
    capsys.readouterr()
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path), '--dry-run') == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan['would_prune']) == 2 and len(layout.list_units(str(tmp_path / 'dumps' / 'appdb'))) == 3
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path), '--prune-only', '--keep-count', '1') == 0
    assert len(layout.list_units(str(tmp_path / 'dumps' / 'appdb'))) == 1
    assert len(record(tmp_path, 'pg-dump-nightly')['pruned']) == 2


def test_restore_mismatch_exits_1_and_records_the_tables(host, tmp_path):
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path)) == 0
    host.sessions.restored = [dict(t, rows=0) if t['name'] == 'Mixed Case Table' else t for t in fakes.DEFAULT_TABLES]
    assert run(tmp_path, 'restore-dump', '--source', str(tmp_path / 'dumps' / 'appdb'), '--target-database', 'c') == 1
    data = record(tmp_path, 'pg-dump-restore-c')
    assert data['status'] == 'failed' and data['mismatches'][0]['name'] == 'Mixed Case Table'


@pytest.mark.parametrize('name', ['../escape', 'a b', ''])
def test_job_names_are_safe_record_names(host, tmp_path, name):
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path, job=name)) == 2
    assert not (tmp_path / 'records').exists()


def test_sigterm_becomes_a_clean_exit(host, tmp_path):
    cli_dump._terminate_cleanly()
    with pytest.raises(SystemExit) as exc:
        os.kill(os.getpid(), signal.SIGTERM)
    assert exc.value.code == 128 + signal.SIGTERM


def test_an_unwritable_destination_is_recorded_not_a_traceback(host, tmp_path, monkeypatch):
    def denied(path, owner):
        raise PermissionError(13, 'Permission denied', path)
    monkeypatch.setattr(engine, 'make_private_dir', denied)
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path)) == 1
    data = record(tmp_path, 'pg-dump-nightly')
    assert data['status'] == 'failed' and 'Permission denied' in data['error']


def test_started_as_root_the_postgresql_programs_run_as_postgres(host, tmp_path, monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 0)  # sudo pgops-backup dump ...: no --run-as given
    raw = []

    def run_stripped(argv, env=None, data=None, stream=None):
        raw.append(list(argv))
        return host(argv[4:] if argv[:1] == ['/usr/bin/runuser'] else argv, env=env, data=data)
    monkeypatch.setattr(cli_dump, 'Runner', functools.partial(Runner, run=run_stripped, which=host.which))
    assert cli.main(['--quiet', '--record-dir', str(tmp_path / 'records'), 'dump', '--dry-run',
                     '--job-file', job_file(tmp_path)]) == 0
    assert raw and all(argv[:4] == ['/usr/bin/runuser', '-u', 'postgres', '--'] for argv in raw)


def test_dump_record_says_partial(host, tmp_path):
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path)) == 0
    data = record(tmp_path, 'pg-dump-nightly')
    assert data['partial'] is False and data['dumps'][0]['partial'] is False
    assert run(tmp_path, 'dump', '--job-file', job_file(tmp_path, extra_options=['--exclude-schema=audit'])) == 0
    data = record(tmp_path, 'pg-dump-nightly')
    assert data['partial'] is True
    assert data['dumps'][0]['partial_reasons'][0].startswith('--exclude-schema=audit: ')
