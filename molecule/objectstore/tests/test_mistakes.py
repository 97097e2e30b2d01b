"""Mistakes an operator makes in the variables, each refused before anything changes (issue 12).

For every mistake the role fails with a message naming the value and what to do; pgbackrest.conf,
conf.d/* and archiving.conf are byte-identical (sha256) and the postmaster was not restarted; archiving
keeps working. Then a live file broken by hand is repaired by a run with the correct values."""

import json
import os
import subprocess
import time

import pytest
import testinfra

DB = 'objectstore-db'
SCENARIO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
EXPECTED = {
    'another passphrase on the encrypted repo2': [
        'the new passphrase for repo2 cannot decrypt stanza main', 'cannot be re-keyed in place', 'new repository'],
    'retention -1': ["'-1' is out of range for 'repo1-retention-full' option", 'allowed range is 1 to 9999999'],
    'retention 0': ["'0' is out of range for 'repo1-retention-full' option"],
    'compress-level out of range': ["'99' is out of range for 'compress-level' option"],
    'unknown compress-type in the free-form dict': ["'zstd' is not allowed for 'compress-type' option"],
    'wrong S3 secret': ['repo2 (s3): the object store refused the new credentials for stanza main',
                        'check s3_key and s3_key_secret'],
    'stanza name with a quote': ['pgbackrest_stanza "ma\'in" is not a valid stanza name', 'e.g. main or db1-prod'],
    'unwritable repository path': ['repo1 path /sys/fs/pgbackrest-repo', 'choose a writable path'],
}


def host():
    return testinfra.get_host('podman://%s' % DB)


def playbook(name):
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'], os.path.join(SCENARIO, name)]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def archiving_works(db):
    """A new segment reaches both repositories: what `pgbackrest check` proves. Only printable output is
    kept: a wrong passphrase makes pgBackRest quote undecryptable bytes."""
    check = db.run("bash -c %s", "runuser -u postgres -- pgbackrest --stanza=main check 2>&1 "
                                 "| tr -cd '\\11\\12\\40-\\176'; exit ${PIPESTATUS[0]}")
    return check.rc == 0, check.stdout


# The scenario's secrets and the wrong values tried: none may show in the output of the attempts.
SECRETS = ['PGOPSTESTACCESS7Q2W', 'pgops-test-S3secret-9d8c7b6a5f', 'pgops-test-Repo2pass-3e5a7c9b1d',
           'another-passphrase-2b7e9a4c1d', 'not-the-secret-of-this-key-1234']


@pytest.fixture(scope='module')
def attempts():
    rc, output = playbook('mistakes.yml')
    assert rc == 0, output[-3000:]
    assert not [s for s in SECRETS if s in output]
    return {a['name']: a for a in json.loads(host().file('/root/mistakes.json').content_string)}


@pytest.mark.parametrize('mistake', sorted(EXPECTED))
def test_the_mistake_is_refused_with_what_to_do(attempts, mistake):
    msg = ' '.join(attempts[mistake]['msg'].split())
    assert msg, 'the role accepted: %s' % mistake
    for words in EXPECTED[mistake]:
        assert words in msg, msg


@pytest.mark.parametrize('mistake', sorted(EXPECTED))
def test_the_live_files_and_the_server_are_untouched(attempts, mistake):
    # sha256 of pgbackrest.conf, conf.d/*.conf, archiving.conf and the postmaster start time.
    assert attempts[mistake]['after'] == attempts[mistake]['before']


def test_archiving_still_works_after_every_mistake(attempts):
    ok, output = archiving_works(host())
    assert ok, output


def test_a_live_file_broken_by_hand_is_repaired_by_a_run_with_the_right_values(attempts):
    db = host()
    db.check_output("sed -i 's/^repo1-retention-full=.*/repo1-retention-full=-1/' /etc/pgbackrest/pgbackrest.conf")
    db.check_output("sed -i 's/^repo2-cipher-pass=.*/repo2-cipher-pass=broken-by-hand-0123456789/' "
                    "/etc/pgbackrest/conf.d/secrets.conf")
    try:
        assert not archiving_works(db)[0]
    finally:
        # The repair itself, and what the scenario's other tests need.
        rc, output = playbook('converge.yml')
    assert rc == 0, output[-3000:]
    assert 'repo1-retention-full=2' in db.file('/etc/pgbackrest/pgbackrest.conf').content_string
    deadline = time.time() + 60
    ok, detail = archiving_works(db)
    while not ok and time.time() < deadline:
        time.sleep(2)
        ok, detail = archiving_works(db)
    assert ok, detail
    backup = db.run('runuser -u postgres -- pgbackrest --stanza=main --repo=1 --type=incr backup')
    assert backup.rc == 0, backup.stdout + backup.stderr
