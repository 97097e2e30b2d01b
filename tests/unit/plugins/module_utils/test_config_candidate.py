# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A configuration reaches the live files only after the installed tools have proven it."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import config_candidate
from ansible_collections.pgops.backup.plugins.module_utils.config_candidate import (
    ManagedFile, PgBackRestConfigChange, PostgresConfFile)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.fakes import FakeProcess, add_help

ARCHIVE_INFO = '[backrest]\nbackrest-format=5\n'
RANGE_ERROR = ("P00  ERROR: [032]: '-1' is out of range for 'repo1-retention-full' option\n"
               "            HINT: allowed range is 1 to 9999999 inclusive\n")


@pytest.fixture(autouse=True)
def own_ids(monkeypatch):
    """postgres and root are this test's own user: chown to them must work without a postgres account."""
    monkeypatch.setattr(config_candidate, '_ids', lambda owner, group: (os.getuid(), os.getgid()))


@pytest.fixture
def live(tmp_path):
    base = tmp_path / 'etc-pgbackrest'
    (base / 'conf.d').mkdir(parents=True)
    (base / 'pgbackrest.conf').write_text('[global]\nrepo1-retention-full=2\n')
    (base / 'conf.d' / 'secrets.conf').write_text('[global]\nrepo1-cipher-pass=old-passphrase-0123456789\n')
    (base / 'conf.d' / 'site-tuning.conf').write_text('[global]\nlog-level-stderr=warn\n')
    return base


def fake_pgbackrest(repo_get=None):
    fake = add_help(FakeProcess(), '2.55.1')
    fake.on('repo-get', out=ARCHIVE_INFO)
    for words, reply in (repo_get or {}).items():
        fake.on('repo-get', *words, **reply)
    return fake


def change(fake, live, conf='[global]\nrepo1-retention-full=3\n', secret='[global]\nrepo1-cipher-pass=new\n',
           repositories=({'index': 1, 'type': 'posix', 'path': '/var/lib/pgbackrest', 'encrypted': True},)):
    files = [ManagedFile('pgbackrest.conf', conf), ManagedFile('conf.d/secrets.conf', secret, mode=0o600, secret=True)]
    return PgBackRestConfigChange(Runner(run=fake, which=fake.which), files,
                                  config_path=str(live / 'pgbackrest.conf'), include_path=str(live / 'conf.d'),
                                  stanzas=['main'], repositories=list(repositories))


def snapshot(live):
    return {p: open(os.path.join(d, p), 'rb').read() for d, dummy, names in os.walk(str(live)) for p in names}


def test_a_proven_candidate_is_swapped_in_with_its_mode_and_a_rerun_changes_nothing(live):
    fake = fake_pgbackrest()
    work = change(fake, live)
    assert [f.name for f in work.changed_files()] == ['pgbackrest.conf', 'conf.d/secrets.conf']
    assert work.prove() == []
    assert work.apply() == [str(live / 'pgbackrest.conf'), str(live / 'conf.d' / 'secrets.conf')]
    assert (live / 'pgbackrest.conf').read_text() == '[global]\nrepo1-retention-full=3\n'
    assert os.stat(str(live / 'conf.d' / 'secrets.conf')).st_mode & 0o777 == 0o600
    assert change(fake_pgbackrest(), live).changed_files() == []
    # Nothing of the candidate stays behind (it held the new passphrase).
    assert [n for n in os.listdir(str(live)) if n.startswith('.pgops-candidate-')] == []


def test_every_proof_reads_the_candidate_never_the_live_files(live):
    fake = fake_pgbackrest()
    change(fake, live).prove()
    proofs = [argv for argv in fake.argvs if '--config-include-path' in ' '.join(argv)]
    assert proofs, fake.argvs
    for argv in proofs:
        config = [a for a in argv if a.startswith('--config=')][0]
        assert '.pgops-candidate-' in config and config != '--config=%s' % (live / 'pgbackrest.conf')
    # Each command's help with and without the stanza, then both info files of the stanza in repo1.
    assert ['--stanza=main', '--repo=1', 'repo-get', 'archive/main/archive.info'] == proofs[-2][-4:]
    assert proofs[-1][-1] == 'backup/main/backup.info'


def test_the_users_own_conf_d_files_are_part_of_the_candidate(live):
    seen = {}
    fake = fake_pgbackrest()
    original = fake.__call__

    def spy(argv, env=None, data=None, stream=None):
        include = [a.split('=', 1)[1] for a in argv if a.startswith('--config-include-path=')]
        if include:
            seen.update({n: open(os.path.join(include[0], n)).read() for n in os.listdir(include[0])})
        return original(argv, env=env, data=data, stream=stream)

    work = change(fake, live)
    work.runner = Runner(run=spy, which=fake.which)
    work.pg_runner = work.runner
    assert work.prove() == []
    assert seen['site-tuning.conf'] == '[global]\nlog-level-stderr=warn\n'
    assert seen['secrets.conf'] == '[global]\nrepo1-cipher-pass=new\n'


def test_an_out_of_range_value_is_refused_and_nothing_changes(live):
    fake = fake_pgbackrest()
    fake._replies[('help', 'backup')] = [(32, RANGE_ERROR, '')]
    before = snapshot(live)
    problems = change(fake, live, conf='[global]\nrepo1-retention-full=-1\n').prove()
    assert problems == ["option value refused by pgBackRest (backup): [032]: '-1' is out of range for "
                        "'repo1-retention-full' option HINT: allowed range is 1 to 9999999 inclusive; correct it "
                        "(`pgbackrest help backup repo-retention-full` says what it takes)"]
    assert snapshot(live) == before
    # A refused value stops before the repositories are read.
    assert not [a for a in fake.argvs if a[-1].endswith('.info')]


def test_a_passphrase_that_cannot_decrypt_the_repository_is_refused_with_how_to_rotate(live):
    fake = fake_pgbackrest({('archive/main/archive.info',): dict(rc=95, out='P00  ERROR: [095]: unable to flush\n')})
    problems = change(fake, live).prove()
    assert len(problems) == 1
    assert problems[0].startswith('the new passphrase for repo1 cannot decrypt stanza main (archive/main/archive.info)')
    assert 'cannot be re-keyed in place' in problems[0] and 'new repository' in problems[0]


def test_a_repository_without_the_stanza_yet_has_nothing_to_prove(live):
    fake = fake_pgbackrest({('archive/main/archive.info',): dict(
        rc=55, out="P00  ERROR: [055]: unable to open missing file '/var/lib/pgbackrest/archive/main/archive.info'\n")})
    assert change(fake, live).prove() == []


def test_encrypted_data_read_without_a_passphrase_is_refused(live):
    fake = fake_pgbackrest({('archive/main/archive.info',): dict(out='Salted__\x8a\x01')})
    problems = change(fake, live).prove()
    assert problems and 'holds encrypted data for stanza main' in problems[0]


@pytest.mark.parametrize('output, expected', [
    ('P00  ERROR: [039]: HTTP request failed with 403 (Forbidden):\n*** Response Content ***:\n<Code>SignatureDoesNotMatch',
     'repo2 (s3): the object store refused the new credentials for stanza main'),
    ('P00  ERROR: [049]: unable to connect to 127.0.0.1:8333: [111] Connection refused\n',
     'repo2 (s3) is not reachable: the object store or repository host is down'),
])
def test_object_store_refusals_tell_a_bad_key_from_a_store_that_is_down(live, output, expected):
    code = int(output.split('[', 1)[1][:3])
    fake = fake_pgbackrest({('--repo=2', 'archive/main/archive.info'): dict(rc=code, out=output)})
    repos = ({'index': 1, 'type': 'posix', 'path': '/var/lib/pgbackrest'},
             {'index': 2, 'type': 's3', 'path': '/pgbackrest'})
    problems = change(fake, live, repositories=repos).prove()
    assert len(problems) == 1 and problems[0].startswith(expected)


def test_a_repository_path_that_cannot_be_written_is_refused(live, tmp_path):
    (tmp_path / 'a-file').write_text('x')
    repos = ({'index': 1, 'type': 'posix', 'path': str(tmp_path / 'a-file' / 'repo')},)
    problems = change(fake_pgbackrest(), live, repositories=repos).prove()
    assert problems == ['repo1 path %s cannot be created: %s is not a directory' % (
        tmp_path / 'a-file' / 'repo', tmp_path / 'a-file')]


def test_a_candidate_left_by_a_killed_run_is_removed(live):
    leftover = live / '.pgops-candidate-abc123'
    (leftover / 'conf.d').mkdir(parents=True)
    (leftover / 'conf.d' / 'secrets.conf').write_text('repo1-cipher-pass=whatever\n')
    change(fake_pgbackrest(), live).prove()
    assert not leftover.exists()


def test_postgresql_refusal_names_the_live_file_and_leaves_it(tmp_path):
    config = tmp_path / '17' / 'main'
    (config / 'conf.d').mkdir(parents=True)
    (config / 'postgresql.conf').write_text("include_dir = 'conf.d'\n")
    (config / 'conf.d' / 'archiving.conf').write_text('archive_timeout = 60\n')
    fake = FakeProcess()
    fake.on('/usr/lib/postgresql/17/bin/postgres', rc=1, err=(
        '2026-12-06 04:14:54.890 UTC [385] LOG:  -5 s is outside the valid range for parameter "archive_timeout" '
        '(0 s .. 1073741823 s)\n2026-12-06 04:14:54.890 UTC [385] FATAL:  configuration file '
        '"%s/conf.d/archiving.conf" contains errors\n') % '/tmp/staged/config')
    conf = PostgresConfFile(Runner(run=fake, which=fake.which), str(config), '/usr/lib/postgresql/17/bin',
                            ManagedFile('conf.d/archiving.conf', 'archive_timeout = -5\n', mode=0o644))
    assert conf.changed() is True
    problems = conf.prove()
    assert problems[0].startswith('PostgreSQL refuses %s/conf.d/archiving.conf: -5 s is outside the valid range' % config)
    argv = fake.argvs[0][fake.argvs[0].index('--') + 1:] if 'runuser' in fake.argvs[0][0] else fake.argvs[0]
    assert argv[0] == '/usr/lib/postgresql/17/bin/postgres' and argv[-2:] == ['-C', 'archive_timeout']
    assert '/17/main/' not in argv[1]  # the copy, not the live configuration
    assert (config / 'conf.d' / 'archiving.conf').read_text() == 'archive_timeout = 60\n'


def test_postgresql_accepts_then_the_file_is_swapped(tmp_path):
    config = tmp_path / '17' / 'main'
    (config / 'conf.d').mkdir(parents=True)
    (config / 'postgresql.conf').write_text("include_dir = 'conf.d'\n")
    fake = FakeProcess().on('/usr/lib/postgresql/17/bin/postgres', out='60\n')
    conf = PostgresConfFile(Runner(run=fake, which=fake.which), str(config), '/usr/lib/postgresql/17/bin',
                            ManagedFile('conf.d/archiving.conf', 'archive_timeout = 60', mode=0o644))
    assert conf.prove() == []
    conf.apply()
    assert (config / 'conf.d' / 'archiving.conf').read_text() == 'archive_timeout = 60\n'
    assert conf.changed() is False


def test_no_space_for_the_second_file_leaves_every_live_file_as_it_was(live, monkeypatch):
    work = change(fake_pgbackrest(), live)
    assert work.prove() == []
    before = snapshot(live)
    real_write = config_candidate.write_file
    calls = []

    def write_until_full(path, managed):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, 'No space left on device')
        real_write(path, managed)
    monkeypatch.setattr(config_candidate, 'write_file', write_until_full)
    with pytest.raises(EngineError, match='No space left on device; every live file is unchanged'):
        work.apply()
    assert snapshot(live) == before  # the first file was written, but never renamed over the live one
    monkeypatch.setattr(config_candidate, 'write_file', real_write)
    assert work.apply() == [str(live / 'pgbackrest.conf'), str(live / 'conf.d' / 'secrets.conf')]
    assert (live / 'conf.d' / 'secrets.conf').read_text() == '[global]\nrepo1-cipher-pass=new\n'
