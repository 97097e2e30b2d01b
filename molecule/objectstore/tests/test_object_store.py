"""repo1 posix + repo2 on a real S3-compatible object store (SeaweedFS with TLS), checked the way an
operator would check it: both repositories get backups and WAL, the object store holds ciphertext only,
and repo2 alone restores the cluster once repo1 is gone."""

import json
import os
import subprocess
import time

import pytest
import testinfra
from testhosts import psql, recap, run_log

DB = 'objectstore-db'
S3 = 'objectstore-s3'
STANZA = 'main'
MARKER = 'pgops-plaintext-marker-5b1e'
BUCKET = 'pgops-offsite'
# base.yml's passphrase (unused here: repo1 is unencrypted, repo2 has its own) and the scenario's secrets.
SECRETS = ['pgops-test-Passphrase-4f9c2e7a1b', 'PGOPSTESTACCESS7Q2W', 'pgops-test-S3secret-9d8c7b6a5f',
           'pgops-test-Repo2pass-3e5a7c9b1d']
# Trees that hold no file the role or the tests write (packages, kernel views): skipped for speed.
PRUNE = ' -o '.join('-path %s' % p for p in ('/proc', '/sys', '/usr/lib', '/usr/share', '/usr/bin', '/usr/sbin', '/var/lib/apt'))
SCENARIO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))

# Reads every object under the bucket's repository path through the filer (plain HTTP inside the
# object store's container), reports how many there are, which are not pgBackRest ciphertext and
# whether the marker text appears in any of them. A file stored alone starts with the cipher's
# "Salted__" header; a bundle (file bundling, on with block incremental) holds blocks encrypted
# without it. So every place where a zstd frame could start (magic 28 B5 2F FD) is given to zstd:
# plaintext decompresses, a chance match inside ciphertext does not.
OBJECT_SCAN = r'''
import json, subprocess, sys, urllib.parse, urllib.request
base = 'http://127.0.0.1:8888'
marker = sys.argv[1].encode()
magic = bytes.fromhex('28b52ffd')
todo, files, plain, found = ['/buckets/%s/pgbackrest/' % sys.argv[2]], 0, [], []
while todo:
    path = todo.pop()
    req = urllib.request.Request(base + urllib.parse.quote(path) + '?limit=100000', headers={'Accept': 'application/json'})
    for entry in json.load(urllib.request.urlopen(req)).get('Entries') or []:
        name = entry['FullPath']
        if entry.get('Mode', 0) & 0o20000000000:
            todo.append(name + '/')
            continue
        data = urllib.request.urlopen(base + urllib.parse.quote(name)).read()
        files += 1
        if data and not data.startswith(b'Salted__') and '/bundle/' not in name:
            plain.append(name)
        if marker in data:
            found.append(name)
        at = data.find(magic)
        while at >= 0 and name not in plain:
            if subprocess.run(['zstd', '-dcq'], input=data[at:at + 1048576], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout:
                plain.append(name)
            at = data.find(magic, at + 4)
print(json.dumps({'files': files, 'plain': plain, 'marker': found}))
'''
# The control on the unencrypted repo1: the marker rows are found once zstd decompresses the frames.
CONTROL_SCAN = r'''
import os, subprocess, sys
marker, magic = sys.argv[1].encode(), bytes.fromhex('28b52ffd')
for root, dirs, names in os.walk('/var/lib/pgbackrest/backup'):
    for name in names:
        data = open(os.path.join(root, name), 'rb').read()
        at = data.find(magic)
        while at >= 0:
            result = subprocess.run(['zstd', '-dcq'], input=data[at:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if marker in result.stdout:
                print('found')
                sys.exit(0)
            at = data.find(magic, at + 4)
print('not found')
'''


def host(name):
    return testinfra.get_host('podman://%s' % name)


def info():
    cmd = host(DB).run('runuser -u postgres -- pgbackrest --stanza=%s --output=json info', STANZA)
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)[0]


def full_backups(stanza_info, repo):
    return [b for b in stanza_info['backup'] if b['type'] == 'full' and b['database']['repo-key'] == repo]


def archived(repo, segment):
    return any(a['database']['repo-key'] == repo and a['max'] and a['max'] >= segment for a in info()['archive'])


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1)
    pytest.fail('%s within %d s' % (what, seconds))


def switch_wal():
    psql(host(DB), 'CREATE TABLE IF NOT EXISTS wal_probe (t timestamptz); INSERT INTO wal_probe VALUES (now())')
    segment = psql(host(DB), 'SELECT pg_walfile_name(pg_current_wal_lsn())')
    psql(host(DB), 'SELECT pg_switch_wal()')
    return segment


def playbook(name, *extra):
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'], os.path.join(SCENARIO, name)] + list(extra)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def test_configuration_keeps_the_object_store_secrets_apart():
    db = host(DB)
    conf = db.file('/etc/pgbackrest/pgbackrest.conf')
    assert (conf.user, conf.group, conf.mode) == ('postgres', 'postgres', 0o640)
    for line in ('repo1-type=posix', 'repo2-type=s3', 'repo2-s3-bucket=%s' % BUCKET, 'repo2-s3-endpoint=objectstore-s3',
                 'repo2-s3-region=us-east-1', 'repo2-s3-uri-style=path', 'repo2-storage-ca-file=/etc/pgops-test/s3-ca.crt',
                 'repo2-cipher-type=aes-256-cbc', 'repo2-retention-full=4'):
        assert line in conf.content_string.splitlines(), line
    assert 'repo1-cipher-type' not in conf.content_string
    secrets = db.file('/etc/pgbackrest/conf.d/secrets.conf')
    assert (secrets.user, secrets.group, secrets.mode) == ('postgres', 'postgres', 0o600)
    keys = sorted(line.split('=', 1)[0] for line in db.check_output('cat /etc/pgbackrest/conf.d/secrets.conf').splitlines()
                  if '=' in line)
    assert keys == ['repo2-cipher-pass', 'repo2-s3-key', 'repo2-s3-key-secret']
    for secret in SECRETS:
        assert secret not in conf.content_string


def test_a_full_backup_lands_in_both_repositories():
    stanza = info()
    assert stanza['status']['code'] == 0, stanza['status']
    assert full_backups(stanza, 1) and full_backups(stanza, 2)
    assert {r['key']: r['cipher'] for r in stanza['repo']} == {1: 'none', 2: 'aes-256-cbc'}


def test_wal_is_archived_to_both_repositories():
    segment = switch_wal()
    for repo in (1, 2):
        wait_for(lambda r=repo: archived(r, segment), 60, 'segment %s did not reach repo%d' % (segment, repo))


def test_each_repository_has_its_own_timers():
    db = host(DB)
    for unit in ('repo1-full', 'repo1-diff', 'repo1-incr', 'repo1-verify', 'repo2-full', 'repo2-diff', 'repo2-verify'):
        timer = db.service('pgbackrest-%s-%s.timer' % (STANZA, unit))
        assert timer.is_enabled and timer.is_running, unit
    # schedule_incr: "" on repo2: no hourly incrementals offsite; the single-repository names are gone.
    assert db.run('ls /etc/systemd/system/pgbackrest-%s-repo2-incr.timer', STANZA).rc != 0
    assert db.run('ls /etc/systemd/system/pgbackrest-%s-full.timer', STANZA).rc != 0
    assert '--repo 2' in db.check_output('systemctl show -P ExecStart pgbackrest-%s-repo2-diff.service', STANZA)


def test_scheduled_backup_to_the_object_store():
    db = host(DB)
    before = {b['label'] for b in info()['backup']}
    cmd = db.run('systemctl start pgbackrest-%s-repo2-diff.service', STANZA)
    assert cmd.rc == 0, db.check_output('journalctl -u pgbackrest-%s-repo2-diff.service -n 30 --no-pager', STANZA)
    new = [b for b in info()['backup'] if b['label'] not in before]
    assert [(b['type'], b['database']['repo-key']) for b in new] == [('diff', 2)]
    record = json.loads(db.file('/var/lib/pgops-backup/records/pgbackrest-backup-%s-repo2-diff.json' % STANZA).content_string)
    assert record['status'] == 'ok' and record['repo'] == 2 and record['label'] == new[0]['label']


def test_object_store_holds_ciphertext_only():
    scan = json.loads(host(S3).check_output('python3 -c %s %s %s', OBJECT_SCAN, MARKER, BUCKET))
    assert scan['files'] > 20, scan['files']
    assert scan['plain'] == [], 'objects that are not pgBackRest ciphertext: %s' % scan['plain']
    assert scan['marker'] == []
    # Nor anywhere in the object store's own storage (volumes, filer metadata).
    assert host(S3).run('grep -rlaF %s /srv/seaweedfs', MARKER).stdout == ''
    # Control: the same rows are readable in the unencrypted repo1 once decompressed, so the scan would see them.
    assert host(DB).check_output('python3 -c %s %s', CONTROL_SCAN, MARKER) == 'found'


def test_a_placeholder_passphrase_is_refused_for_its_repository():
    rc, output = playbook('refuse.yml')
    assert rc != 0
    text = ' '.join(output.split())
    assert 'Encrypted repositories repo2 need a passphrase' in text
    assert 'Refuse an empty or placeholder repository passphrase' in output
    assert recap(output)[DB]['failed'] == 1


def test_repo2_alone_restores_the_cluster_after_repo1_is_lost():
    db = host(DB)
    psql(db, "INSERT INTO marker VALUES (1000, 'written after the backups')")
    segment = switch_wal()
    wait_for(lambda: archived(2, segment), 60, 'segment %s did not reach repo2' % segment)
    # The on-site repository is lost.
    db.check_output('rm -rf /var/lib/pgbackrest/backup /var/lib/pgbackrest/archive')
    rc, output = playbook('restore-repo2.yml')
    assert rc == 0, output
    rows = db.check_output('runuser -u postgres -- psql -XAtq -p 5498 -c %s', 'SELECT count(*), max(id) FROM marker')
    assert rows == '201|1000'
    assert db.check_output('runuser -u postgres -- psql -XAtq -p 5498 -c %s', 'SHOW archive_mode') == 'off'


@pytest.mark.parametrize('name', [DB, S3])
def test_no_secret_in_process_arguments_or_world_readable_files(name):
    h = host(name)
    args = h.check_output('ps -eo args')
    patterns = ' '.join('-e %s' % s for s in SECRETS)
    assert not [s for s in SECRETS if s in args]
    found = h.run("find / -xdev \\( %s \\) -prune -o -type f -perm -o=r -size -2M -print0"
                  " | xargs -0 grep -lF %s 2>/dev/null" % (PRUNE + ' -o -path /srv/seaweedfs', patterns))
    assert found.stdout.split() == []


def test_no_secret_in_converge_output():
    log = run_log('converge')
    assert '<%s>' % DB in log, 'the converge log is not at -vvv'
    for step in ('converge', 'idempotence'):
        for kind in ('log', 'out'):
            text = run_log(step, kind)
            assert not [s for s in SECRETS if s in text], '%s.%s' % (step, kind)
