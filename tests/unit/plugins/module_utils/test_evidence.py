# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup evidence`: what the bundle holds for the period, its manifest, its modes, the key
fingerprint, and that no secret of the host reaches it. The process boundary is faked (pgBackRest
info from the captured fixtures, pg_lsclusters, psql); records, configuration and bundle are real files."""

from __future__ import annotations

import binascii
import functools
import hashlib
import io
import json
import os
import stat
import tarfile

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli, cli_evidence, evidence, process
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.metrics_fakes import data_dir, host

CIPHER_PASS = 'Evidence-Test-Passphrase-7c1d'
S3_KEY = 'AKIAEVIDENCETEST0001'
S3_SECRET = 'evidence/s3+secret/Key0123456789abcdef'
DUMP_PASSPHRASE = 'gpg-dump-passphrase-55aa'
DB_PASSWORD = 'pg-password-9bq'
NOTIFY_SECRET = 'https://hooks.example/T0KEN-evidence-31'
# The chain fixture: full 1795252300..301 (2026-11-21), diff and incr on 2026-11-22, full and incr on 2026-11-29.
SINCE, UNTIL = '2026-11-22', '2026-11-30'


def put(directory, record, **data):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ('%s.json' % record)).write_text(json.dumps(data))


@pytest.fixture(autouse=True)
def fast_fingerprint(monkeypatch):
    # The recipe is the same; fewer iterations keep the tests quick (one test checks the real count).
    monkeypatch.setattr(evidence, 'FINGERPRINT_ITERATIONS', 1000)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A host: pgBackRest configuration with its secrets apart, pg_dump and notify secrets, records."""
    etc = tmp_path / 'etc'
    (etc / 'conf.d').mkdir(parents=True)
    (etc / 'pgbackrest.conf').write_text('[global]\nrepo1-path=/var/lib/pgbackrest\nrepo1-cipher-type=aes-256-cbc\n'
                                         '\n[main]\npg1-path=/var/lib/postgresql/17/main\n')
    secrets = etc / 'conf.d' / 'secrets.conf'
    secrets.write_text('[global]\nrepo1-cipher-pass=%s\nrepo2-s3-key=%s\nrepo2-s3-key-secret=%s\n'
                       % (CIPHER_PASS, S3_KEY, S3_SECRET))
    os.chmod(str(secrets), 0o600)
    jobs = tmp_path / 'jobs'
    jobs.mkdir()
    (jobs / 'passphrase').write_text(DUMP_PASSPHRASE + '\n')
    (jobs / 'pgpass').write_text('db.example:5432:*:backup:%s\n' % DB_PASSWORD)
    (jobs / 'pg-dump-nightly.json').write_text(json.dumps({'name': 'nightly', 'passphrase_file': str(jobs / 'passphrase'),
                                                           'passfile': str(jobs / 'pgpass')}))
    (jobs / 'notify.secret').write_text(NOTIFY_SECRET + '\n')
    records = tmp_path / 'records'
    put(records, 'pgbackrest-backup-main-full', job='pgbackrest-backup-main-full', status='ok',
        label='20261129-010002F', type='full', finished_epoch=1795914006, stanza='main',
        started_at='2026-11-29T01:00:01Z', finished_at='2026-11-29T01:00:06Z')
    put(records, 'restore_test-main', job='restore_test-main', name='main', source='pgbackrest', status='ok',
        backup_label='20261129-010002F', rto_seconds=42.5, rpo_seconds=61, finished_epoch=1795920000,
        checks=[{'name': 'amcheck', 'status': 'ok'}],
        # A secret that should never have been recorded: the bundle must not carry it on.
        error='scratch restore used passphrase %s' % CIPHER_PASS)
    put(records, 'pg-dump-nightly', job='pg-dump-nightly', dump_job='nightly', status='ok', size_bytes=4096,
        finished_epoch=1795900000, commands=['pg_dump "host=db port=5432 password=%s"' % DB_PASSWORD])
    put(records, 'notify', job='notify', status='ok', finished_epoch=1795901000,
        stderr='POST %s failed; curl https://ops:hunter2secret@hooks.example/x' % NOTIFY_SECRET)
    # Outside the period: not in the bundle.
    put(records, 'pgbackrest-verify-main', job='pgbackrest-verify-main', status='ok', finished_epoch=1795000000)
    put(records / 'pitr-audit', 'pitr-restore-main-20261123T100000Z-ok', job='pitr-restore-main', status='ok',
        stanza='main', requested_by='alice', reason='CHG-1234 test restore', destination='elsewhere',
        target={'description': "time '2026-11-22 02:00:00+00'"}, backup_set='20261121-091140F',
        finished_epoch=1795435200, finished_at='2026-11-23T10:00:00Z')
    # The job's last record repeats its newest audit record: listed once, both files kept.
    put(records, 'pitr-restore-main', job='pitr-restore-main', status='ok', stanza='main', requested_by='alice',
        finished_epoch=1795435200, finished_at='2026-11-23T10:00:00Z')
    put(records, 'recovery-window', job='recovery-window', status='ok', finished_at='2026-11-29T03:00:00Z',
        windows=[{'stanza': 'main', 'repo': 1, 'ok': True, 'recoverable': True,
                  'first_recoverable': {'epoch': 1795252301}, 'latest_recoverable': {'epoch': 1795920000},
                  'window_seconds': 667699, 'gaps': [{'timeline': 1, 'first_missing': '000000010000000000000005',
                                                      'last_missing': '000000010000000000000005', 'segments': 1,
                                                      'blocking': False}]}])
    registry = tmp_path / 'restore-points'
    put(registry, 'before-upgrade', name='before-upgrade', lsn='0/5000028', timeline=1, stanza='main',
        created_at='2026-11-24T08:00:00.000000Z', created_us=1795507200000000, requested_by='bob',
        reason='CHG-77')
    fake = host(data_dir(tmp_path), info='info-chain-2.55.1.json')
    fake.on('version', out='pgBackRest 2.55.1\n')
    monkeypatch.setattr(process.os, 'geteuid', lambda: os.stat(str(tmp_path)).st_uid)
    monkeypatch.setattr(cli_evidence, 'Runner', functools.partial(Runner, run=fake, which=fake.which))
    return {'etc': etc, 'jobs': jobs, 'records': records, 'registry': registry, 'out': tmp_path / 'evidence',
            'fake': fake}


def run(site, *extra):
    return cli.main(['--json', '--quiet', '--config', str(site['etc'] / 'pgbackrest.conf'),
                     '--record-dir', str(site['records']), 'evidence',
                     '--config-include-path', str(site['etc'] / 'conf.d'), '--job-dir', str(site['jobs']),
                     '--registry-dir', str(site['registry']), '--output-dir', str(site['out'])] + list(extra))


def bundle_files(path):
    with tarfile.open(path, 'r:gz') as tar:
        return {m.name.split('/', 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def made(site, capsys, *extra):
    assert run(site, '--since', SINCE, '--until', UNTIL, '--requested-by', 'carol', '--reason', 'AUDIT-9', *extra) == 0
    result = json.loads(capsys.readouterr()[0])
    return result, bundle_files(result['bundle'])


def test_bundle_holds_the_period_with_a_manifest_that_verifies(site, capsys):
    result, files = made(site, capsys)
    ev = json.loads(files['evidence.json'])
    assert ev['period']['since'] == '2026-11-22T00:00:00Z' and ev['period']['until'] == '2026-11-30T00:00:00Z'
    assert [b['label'] for b in ev['backups']] == ['20261121-091140F_20261122-013002D', '20261121-091140F_20261122-023002I',
                                                   '20261129-010002F', '20261129-010002F_20261129-023002I']
    full = ev['backups'][2]
    assert full['type'] == 'full' and full['repo'] == 1 and full['cipher'] == 'aes-256-cbc'
    assert full['start'] == '2026-11-29T01:00:02Z' and full['record'] == 'records/pgbackrest-backup-main-full.json'
    assert full['key_fingerprint'].startswith('pbkdf2-sha256:1000:') and full['size'] and full['repo_size']
    assert [d['name'] for d in ev['drills']] == ['main'] and ev['drills'][0]['rto_seconds'] == 42.5
    assert [(p['requested_by'], p['reason']) for p in ev['pitr']] == [('alice', 'CHG-1234 test restore')]
    assert [r['name'] for r in ev['restore_points']] == ['before-upgrade']
    assert sorted(j['record'] for j in ev['jobs']) == ['notify', 'pg-dump-nightly', 'pgbackrest-backup-main-full']
    assert ev['requested_by'] == 'carol' and ev['reason'] == 'AUDIT-9'
    assert ev['recovery_window']['windows'][0]['gaps'][0]['first_missing'] == '000000010000000000000005'
    assert ev['archiving'][0]['cluster'] == '17/main' and ev['archiving'][0]['archived_count'] == 9
    # The raw records of the period, the current window, pgBackRest's own JSON; not the verify of 2026-11-08.
    assert {'records/restore_test-main.json', 'records/pitr-audit/pitr-restore-main-20261123T100000Z-ok.json',
            'records/recovery-window.json', 'restore-points/before-upgrade.json', 'pgbackrest-info.json',
            'summary.md', 'MANIFEST.sha256'} <= set(files)
    assert 'records/pgbackrest-verify-main.json' not in files and 'records/pitr-restore-main.json' in files
    manifest = dict(reversed(line.split('  ', 1)) for line in files['MANIFEST.sha256'].decode().splitlines())
    assert sorted(manifest) == sorted(set(files) - {'MANIFEST.sha256'})
    assert all(hashlib.sha256(files[name]).hexdigest() == digest for name, digest in manifest.items())
    assert evidence.verify_bundle(result['bundle'])['ok']
    with open(result['bundle'], 'rb') as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == result['sha256']
    record = json.loads((site['records'] / 'evidence.json').read_text())
    assert record['status'] == 'ok' and record['bundle'] == result['bundle'] and record['requested_by'] == 'carol'


def test_summary_lists_backups_drills_pitr_and_gaps_for_a_person(site, capsys):
    _result, files = made(site, capsys)
    text = files['summary.md'].decode()
    assert '# Backup evidence: ' in text and '2026-11-22T00:00:00Z to 2026-11-30T00:00:00Z' in text
    assert '## Backups of the period (4)' in text and '| 20261129-010002F | full | main | 1 |' in text
    assert '## Restore drills (1)' in text and '## Point-in-time recoveries (audit records) (1)' in text
    assert 'alice' in text and 'CHG-1234 test restore' in text and 'before-upgrade' in text
    assert '1 WAL gap(s): 000000010000000000000005..000000010000000000000005 (1 segments)' in text
    assert 'sha256sum -c MANIFEST.sha256' in text


def test_no_secret_of_the_host_reaches_the_bundle(site, capsys):
    result, files = made(site, capsys)
    blob = b'\n'.join(files.values())
    for secret in (CIPHER_PASS, S3_KEY, S3_SECRET, DUMP_PASSPHRASE, DB_PASSWORD, NOTIFY_SECRET, 'hunter2secret'):
        assert secret.encode() not in blob, secret
    with open(result['bundle'], 'rb') as handle:
        assert CIPHER_PASS.encode() not in handle.read()
    ev = json.loads(files['evidence.json'])
    redacted = dict((r['file'], r['what']) for r in ev['redactions'])
    assert redacted['records/restore_test-main.json'] == ['repo1-cipher-pass in [global]']
    assert 'records/pg-dump-nightly.json' in redacted and 'records/notify.json' in redacted
    assert '[REDACTED]' in files['records/restore_test-main.json'].decode()
    assert 'Secrets found in records (redacted)' in files['summary.md'].decode()


def test_bundle_is_0600_in_a_0700_directory_and_no_temporary_file_is_left(site, capsys):
    site['out'].mkdir(mode=0o755)
    result, _files = made(site, capsys)
    assert stat.S_IMODE(os.stat(result['bundle']).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(site['out'])).st_mode) == 0o700
    assert os.listdir(str(site['out'])) == [os.path.basename(result['bundle'])]
    with tarfile.open(result['bundle'], 'r:gz') as tar:
        assert {m.mode for m in tar.getmembers() if m.isfile()} == {0o600}


def test_fingerprint_is_pbkdf2_of_the_passphrase_salted_with_stanza_and_repository(site, capsys, monkeypatch):
    monkeypatch.setattr(evidence, 'FINGERPRINT_ITERATIONS', 600000)
    assert evidence.fingerprint(CIPHER_PASS, 'main', 1) == 'pbkdf2-sha256:600000:%s' % binascii.hexlify(
        hashlib.pbkdf2_hmac('sha256', CIPHER_PASS.encode(), b'pgops-backup key fingerprint\0main\0repo1', 600000, 16)
    ).decode()
    monkeypatch.setattr(evidence, 'FINGERPRINT_ITERATIONS', 1000)
    one = evidence.fingerprint(CIPHER_PASS, 'main', 1)
    assert one != evidence.fingerprint(CIPHER_PASS, 'main', 2) != evidence.fingerprint(CIPHER_PASS, 'other', 1)
    assert one != evidence.fingerprint(CIPHER_PASS + 'x', 'main', 1)
    _result, files = made(site, capsys)
    ev = json.loads(files['evidence.json'])
    assert ev['stanzas'][0]['repositories'][0]['fingerprint'] == one


def test_a_stanza_section_passphrase_wins_over_global():
    sections = {'global': {'repo1-cipher-pass': 'global-pass'}, 'main': {'repo1-cipher-pass': 'stanza-pass'}}
    assert evidence.cipher_pass(sections, 'main', 1) == 'stanza-pass'
    assert evidence.cipher_pass(sections, 'other', 1) == 'global-pass'
    assert evidence.cipher_pass(sections, 'other', 2) is None


def test_without_the_passphrase_here_the_fingerprint_is_explained_not_invented(site, capsys):
    (site['etc'] / 'conf.d' / 'secrets.conf').write_text('[global]\n')
    _result, files = made(site, capsys)
    repo = json.loads(files['evidence.json'])['stanzas'][0]['repositories'][0]
    assert repo['fingerprint'] is None and 'no repo1-cipher-pass' in repo['note']


@pytest.mark.parametrize('since, until, message', [
    ('2026-11-30', '2026-11-22', 'the period is empty'),
    ('last tuesday', 'now', "--since 'last tuesday' is not a time"),
    ('2026-11-22T10:00:00', 'now', 'is not a time'),  # no zone: refused, never guessed
])
def test_a_bad_period_is_refused_before_anything_is_written(site, capsys, since, until, message):
    assert run(site, '--since', since, '--until', until) == 2
    assert message in capsys.readouterr()[1]
    assert not site['out'].exists() and not (site['records'] / 'evidence.json').exists()
    assert site['fake'].calls == []


def test_period_forms():
    now = 1795255200.0
    assert evidence.period('30d', 'now', now) == {'since': now - 30 * 86400, 'until': now}
    assert evidence.period('2026-11-21T09:00:00+01:00', '1795255200', now)['since'] == 1795248000.0
    with pytest.raises(EngineError, match='the period is empty'):
        evidence.period('1h', '2h', now)


def test_an_evidence_directory_of_another_user_is_refused(site, capsys, monkeypatch):
    site['out'].mkdir()
    monkeypatch.setattr(process.os, 'geteuid', lambda: 4242)
    assert run(site, '--since', SINCE, '--until', UNTIL) == 1
    assert 'belongs to uid' in json.loads(capsys.readouterr()[0])['error']
    assert os.listdir(str(site['out'])) == []


def test_a_secret_left_after_scrubbing_stops_the_bundle(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, 'scrub', lambda text, secrets: (text, []))
    gathered = {'evidence': {'generated_at': '2026-11-21T10:00:00Z', 'generated_epoch': 1795255200, 'host': 'h',
                             'notes': [], 'redactions': []},
                'files': {}, 'texts': {'records/x.json': '{"oops": "%s"}' % CIPHER_PASS},
                'secrets': [('repo1-cipher-pass in [global]', CIPHER_PASS)]}
    monkeypatch.setattr(evidence, 'summary', lambda ev: '')
    with pytest.raises(EngineError, match=r'a secret is still in records/x.json \(repo1-cipher-pass in \[global\]\)'):
        evidence.write_bundle(gathered, str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists() or os.listdir(str(tmp_path / 'out')) == []


def test_verify_bundle_names_a_changed_file(site, capsys, tmp_path):
    result, files = made(site, capsys)
    files['summary.md'] += b'tampered\n'
    forged = tmp_path / 'forged.tar.gz'
    with tarfile.open(str(forged), 'w:gz') as tar:
        for name, data in files.items():
            info = tarfile.TarInfo('top/%s' % name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    check = evidence.verify_bundle(str(forged))
    assert not check['ok'] and check['problems'] == ['summary.md does not match its sha256']


def test_pgbackrest_version_is_asked_without_the_configuration(site, capsys):
    _result, files = made(site, capsys)
    assert json.loads(files['evidence.json'])['pgbackrest_version'] == '2.55.1'
    version = [a for a in site['fake'].argvs if a[-1] == 'version']
    assert version and not any(arg.startswith('--config') for arg in version[0])
    info = [a for a in site['fake'].argvs if a[-1] == 'info']
    assert any(arg.startswith('--config=') for arg in info[0])


def test_without_pgbackrest_the_records_still_make_a_bundle_with_a_note(site, capsys, tmp_path, monkeypatch):
    fake = host(data_dir(tmp_path, name='other'), info='info-chain-2.55.1.json')
    fake.missing.add('pgbackrest')
    monkeypatch.setattr(cli_evidence, 'Runner', functools.partial(Runner, run=fake, which=fake.which))
    _result, files = made(site, capsys)
    ev = json.loads(files['evidence.json'])
    assert ev['backups'] == [] and ev['stanzas'] == [] and [d['name'] for d in ev['drills']] == ['main']
    assert any("required program 'pgbackrest' was not found" in n for n in ev['notes'])
    assert 'pgbackrest-info.json' not in files
