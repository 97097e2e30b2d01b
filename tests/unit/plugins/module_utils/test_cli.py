# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `pgops-backup` host command: exit codes, job records and output.

cli builds its Runner itself; the tests give that Runner the fake process boundary and keep the
rest of it real.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli
from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.tests.unit.fakes import (
    PGBACKREST, FakeProcess, fixture, info_with_backups, pgbackrest_fake)

F1 = '20261121-091140F'
D1 = F1 + '_20261122-013002D'
OK = fixture('info-ok-2.55.1.json')
AFTER_DIFF = info_with_backups('info-chain-2.55.1.json', [F1, D1])
ARCHIVE_TIMEOUT = (
    "P00  ERROR: [082]: WAL segment 000000010000000000000006 was not archived before the 60000ms timeout\n"
    "            HINT: check the archive_command to ensure that all options are correct (especially --stanza).\n"
    "            HINT: check the PostgreSQL server log for errors.\n"
    "            HINT: run the 'start' command if the stanza was previously stopped.\n")
LOCK = ("P00  ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/main-backup.lock': "
        "Resource temporarily unavailable\n            HINT: is another pgBackRest process running?\n")


def run(tmp_path, *argv):
    return cli.main(['--quiet', '--json', '--record-dir', str(tmp_path)] + list(argv))


def record(tmp_path, job):
    return json.loads((tmp_path / ('%s.json' % job)).read_text())


def test_backup_ok(use, tmp_path, capsys):
    fake = use(pgbackrest_fake(info=[OK, AFTER_DIFF]).on('backup'))
    assert run(tmp_path, 'backup', '--stanza', 'main', '--type', 'diff', '--annotation', 'ticket=42=x') == 0
    data = record(tmp_path, 'pgbackrest-backup-main-diff')
    assert data['status'] == 'ok' and data['label'] == D1 and data['type'] == 'diff'
    assert (data['size'], data['repo_size']) == (23881029, 2859716)
    assert (data['wal_start'], data['wal_stop']) == ('000000010000000000000006',) * 2
    assert data['requested_type'] == 'diff' and data['stanza'] == 'main'
    assert data['commands'][1] == ('/usr/bin/pgbackrest --stanza=main --log-level-console=info --type=diff '
                                   '--annotation=ticket=42=x backup')
    assert json.loads(capsys.readouterr().out) == data
    assert fake.pgbackrest_commands() == ['info', 'backup', 'info']


def test_backup_progress_goes_to_stderr(use, tmp_path, capsys):
    use(pgbackrest_fake(info=[OK, AFTER_DIFF]).on('backup', out='P00   INFO: new backup label = %s\n' % D1))
    assert cli.main(['--record-dir', str(tmp_path), 'backup', '--stanza', 'main', '--type', 'diff']) == 0
    out, err = capsys.readouterr()
    assert out == ''
    lines = err.splitlines()
    assert lines[0] == 'pgops-backup: starting diff backup of stanza main'
    assert lines[1] == 'pgops-backup: P00   INFO: new backup label = %s' % D1
    assert lines[2].startswith('pgops-backup: backup %s (diff) done in ' % D1)
    assert lines[2].endswith(': 22.8 MiB, 96.0 KiB written to the repository')  # the diff's own delta


def test_backup_failure(use, tmp_path, capsys):
    use(pgbackrest_fake(info=OK).on('backup', rc=82, out=ARCHIVE_TIMEOUT))
    assert run(tmp_path, 'backup', '--stanza', 'main') == 1
    data = record(tmp_path, 'pgbackrest-backup-main-incr')
    assert data['status'] == 'failed' and data['error_code'] == 82
    assert '[082] (archive-timeout): WAL segment 000000010000000000000006 was not archived' in data['error']
    assert 'command: /usr/bin/pgbackrest --stanza=main --log-level-console=info --type=incr backup (rc=82)' in data['error']
    assert 'next step: WAL did not reach the repository' in data['error']
    assert len(data['commands']) == 2
    assert json.loads(capsys.readouterr().out)['status'] == 'failed'


def test_backup_skipped_while_another_holds_the_lock(use, tmp_path, capsys):
    use(pgbackrest_fake(info=OK).on('backup', rc=50, out=LOCK))
    assert cli.main(['--json', '--record-dir', str(tmp_path), 'backup', '--stanza', 'main', '--type', 'incr']) == 0
    data = record(tmp_path, 'pgbackrest-backup-main-incr')
    assert data['status'] == 'skipped'
    assert data['reason'] == 'another backup of the stanza is running'
    assert 'error' not in data
    out, err = capsys.readouterr()
    assert json.loads(out) == data
    assert 'pgops-backup: skipped: another backup of stanza main is running' in err


def test_backup_of_a_stanza_never_created(use, tmp_path):
    use(pgbackrest_fake(info=fixture('info-missing-2.55.1.json').replace('"nope"', '"main"')))
    assert run(tmp_path, 'backup', '--stanza', 'main', '--type', 'full') == 1
    data = record(tmp_path, 'pgbackrest-backup-main-full')
    assert data['status'] == 'failed' and data['error_code'] is None
    assert data['error'].startswith("stanza 'main' has not been created in the repository")


def test_backup_as_run_as_user_when_root(use, tmp_path, monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    fake = use(pgbackrest_fake(info=[OK, AFTER_DIFF]).on('backup'))
    assert cli.main(['--quiet', '--run-as', 'postgres', '--config', '/etc/pgbackrest/alt.conf',
                     '--record-dir', str(tmp_path), 'backup', '--stanza', 'main', '--type', 'diff', '--repo', '2']) == 0
    assert fake.argvs[1] == ['/usr/bin/runuser', '-u', 'postgres', '--', PGBACKREST, '--config=/etc/pgbackrest/alt.conf',
                             '--stanza=main', '--log-level-console=info', '--type=diff', '--repo=2', 'backup']


@pytest.mark.parametrize('name', ['check-missing-2.45.err', 'check-missing-2.55.1.out'])
def test_check_failure(use, tmp_path, name):
    reply = {'err' if name.endswith('.err') else 'out': fixture(name)}
    fake = use(FakeProcess().on('check', rc=37, **reply))
    assert run(tmp_path, 'check', '--stanza', 'nope') == 1
    data = record(tmp_path, 'pgbackrest-check-nope')
    assert data['status'] == 'failed' and data['error_code'] == 37
    assert 'HINT: does this stanza exist?' in data['error']
    assert fake.argvs == [[PGBACKREST, '--stanza=nope', '--log-level-console=info', 'check']]


def test_verify_ok(use, tmp_path):
    use(FakeProcess().on('verify', out='P00   INFO: verify command end: completed successfully\n'))
    assert run(tmp_path, 'verify', '--stanza', 'main') == 0
    data = record(tmp_path, 'pgbackrest-verify-main')
    assert data['status'] == 'ok' and data['commands'] == ['/usr/bin/pgbackrest --stanza=main --log-level-console=info verify']


def test_info_json(use, tmp_path, capsys):
    fake = use(FakeProcess().on('info', out=fixture('info-chain-2.55.1.json')))
    assert run(tmp_path, 'info') == 0
    stanzas = json.loads(capsys.readouterr().out)
    assert [s['name'] for s in stanzas] == ['main'] and stanzas[0]['backup_count'] == 5
    assert fake.argvs == [[PGBACKREST, '--output=json', 'info']]


def test_info_text(use, tmp_path, capsys):
    use(FakeProcess().on('info', out=OK))
    assert cli.main(['--record-dir', str(tmp_path), 'info', '--stanza', 'main']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'stanza main: ok'
    assert lines[1] == '  WAL archive: 000000010000000000000001 .. 000000010000000000000004'
    assert lines[2].split() == [F1, 'full', '22.8', 'MiB', 'repo', '2.7', 'MiB', '1s']


def test_info_failure(use, tmp_path, capsys):
    use(FakeProcess().on('info', rc=37, out=fixture('check-missing-2.55.1.out')))
    assert cli.main(['--record-dir', str(tmp_path), 'info']) == 1
    assert 'FAILED: pgbackrest info failed with pgBackRest error [037]' in capsys.readouterr().err


@pytest.mark.parametrize('in_recovery, role, code', [
    ('f', 'primary', 0), ('t', 'primary', cli.SKIP), ('t', 'standby', 0), ('f', 'standby', cli.SKIP)])
def test_should_run(use, in_recovery, role, code, capsys):
    fake = use(FakeProcess().on('SELECT pg_is_in_recovery()', out=in_recovery + '\n'))
    assert cli.main(['should-run', '--port', '5433', '--role', role]) == code
    assert fake.argvs[0][fake.argvs[0].index('-p') + 1] == '5433'
    if code:
        assert code == 1
        assert 'skipping: this cluster is a' in capsys.readouterr().err


def test_should_run_fails_when_postgresql_is_unreachable(use, capsys):
    use(FakeProcess().on('SELECT pg_is_in_recovery()', rc=2, err='psql: error: connection to server on socket '
                         '"/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\n'))
    assert cli.main(['should-run']) == cli.FAIL == 255
    assert 'cannot tell whether PostgreSQL is a primary' in capsys.readouterr().err


# --- run-as rule and stanza names (issue 12) ---------------------------------------------------

def _as_postgres(argv):
    return argv[:4] == ['/usr/bin/runuser', '-u', 'postgres', '--']


@pytest.mark.parametrize('sudo', [False, True])
def test_readme_example_as_root_runs_pgbackrest_as_postgres(use, tmp_path, monkeypatch, sudo):
    """`pgops-backup --json backup --stanza main --type incr` as root (or with sudo): pgBackRest run as
    root connects to PostgreSQL as role root ("unable to find primary cluster") and leaves root-owned
    files in the repository, spool and log paths."""
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    if sudo:
        monkeypatch.setenv('SUDO_USER', 'alice')
    fake = use(pgbackrest_fake(info=[OK, AFTER_DIFF]).on('backup'))
    assert cli.main(['--quiet', '--json', '--record-dir', str(tmp_path), 'backup', '--stanza', 'main',
                     '--type', 'incr']) == 0
    assert fake.argvs and all(_as_postgres(argv) for argv in fake.argvs)
    assert fake.argvs[1][4:] == [PGBACKREST, '--stanza=main', '--log-level-console=info', '--type=incr', 'backup']


@pytest.mark.parametrize('argv', [['check', '--stanza', 'main'], ['verify', '--stanza', 'main'], ['info'],
                                  ['should-run', '--port', '5432']])
def test_every_pgbackrest_and_psql_subcommand_runs_as_postgres_when_root(use, tmp_path, monkeypatch, argv):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    fake = use(FakeProcess().on('check').on('verify').on('info', out=OK)
               .on('SELECT pg_is_in_recovery()', out='f\x1e'))
    assert run(tmp_path, *argv) == 0
    assert fake.argvs and all(_as_postgres(a) for a in fake.argvs)


def test_run_as_root_is_refused_before_anything_runs(use, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    fake = use(pgbackrest_fake(info=OK).on('backup'))
    assert cli.main(['--record-dir', str(tmp_path), '--run-as', 'root', 'backup', '--stanza', 'main']) == 2
    assert fake.calls == [] and list(tmp_path.iterdir()) == []
    assert "refusing to run pgBackRest and the PostgreSQL programs as 'root'" in capsys.readouterr().err


@pytest.mark.parametrize('argv', [['backup', '--stanza', "ma'in"], ['check', '--stanza', 'main db'],
                                  ['verify', '--stanza=-main'], ['info', '--stanza', 'a/b'],
                                  ['metrics', '--textfile-dir', '-', '--stanza', 'ok', '--stanza', '[x]']])
def test_invalid_stanza_name_refused_before_anything_runs(use, tmp_path, capsys, argv):
    fake = use(pgbackrest_fake(info=OK).on('backup').on('check'))
    assert cli.main(['--record-dir', str(tmp_path)] + argv) == 2
    assert fake.calls == [] and list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert 'FAILED: invalid stanza name' in err and 'rename the stanza' in err


# --- notification hook: the token never on a command line --------------------------------------

def _notify_setup(tmp_path, command, secret=None):
    conf = tmp_path / 'etc'
    conf.mkdir()
    (conf / 'notify.json').write_text(json.dumps({'command': command, 'log_lines': 5}))
    if secret is not None:
        (conf / 'notify.secret').write_text(secret + '\n')
        (conf / 'notify.secret').chmod(0o600)
    records = tmp_path / 'records'
    records.mkdir()
    return str(conf / 'notify.json'), records


def test_notify_passes_the_secret_by_environment_and_file_only(use, tmp_path):
    secret = 'url = "https://hooks.example.com/T0KEN-8f3a"'
    config, records = _notify_setup(tmp_path, ['curl', '-fsS', '--data-binary', '@-', '--config',
                                               str(tmp_path / 'etc' / 'notify.secret')], secret)
    fake = use(FakeProcess().on('--no-pager', out='log line\n').on('curl'))
    assert cli.main(['--quiet', '--record-dir', str(records), 'notify', 'pgbackrest-main-incr.service',
                     '--notify-config', config]) == 0
    (call,) = [c for c in fake.calls if c['argv'][0] == 'curl']
    assert 'T0KEN' not in ' '.join(call['argv'])
    assert call['env']['PGOPS_NOTIFY_SECRET'] == secret
    assert call['env']['PGOPS_NOTIFY_SECRET_FILE'] == str(tmp_path / 'etc' / 'notify.secret')
    assert 'T0KEN' not in (records / 'notify.json').read_text()


@pytest.mark.parametrize('arg', ['https://alice:s3cret@hooks.example.com/x', 'https://h.example/x?token=abc',
                                 'https://h.example/x?a=1&api_key=abc', 'Authorization: Bearer abc',
                                 'exec curl -H "Authorization: Bearer abc" https://h.example/x'])
def test_notify_refuses_a_command_carrying_a_credential(use, tmp_path, capsys, arg):
    config, records = _notify_setup(tmp_path, ['curl', '-fsS', arg])
    fake = use(FakeProcess().on('--no-pager', out='x\n').on('curl'))
    assert cli.main(['--record-dir', str(records), 'notify', 'x.service', '--notify-config', config]) == 1
    assert fake.calls == []
    err = capsys.readouterr().err
    assert 'refusing to run the notification command: argument 2' in err and 'host_tools_notify_secret' in err
    data = json.loads((records / 'notify.json').read_text())
    assert data['status'] == 'failed' and 'abc' not in json.dumps(data)


def test_notify_accepts_ordinary_commands(use, tmp_path):
    config, records = _notify_setup(tmp_path, [
        '/bin/sh', '-c', 'exec curl -fsS -H "X-Pgops-Unit: $PGOPS_UNIT" --data-binary @- http://127.0.0.1:9099/pgops-hook'])
    fake = use(FakeProcess().on('--no-pager', out='x\n').on('/bin/sh'))
    assert cli.main(['--quiet', '--record-dir', str(records), 'notify', 'x.service', '--notify-config', config]) == 0
    assert 'PGOPS_NOTIFY_SECRET' not in fake.calls[-1]['env']


def test_a_refused_run_as_fails_an_exec_condition_instead_of_skipping_the_unit(use, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    fake = use(FakeProcess())
    assert cli.main(['--quiet', '--run-as', 'root', 'should-run', '--port', '5432']) == cli.FAIL
    assert fake.calls == [] and 'FAILED: refusing to run' in capsys.readouterr().err
