"""Repository host mode, checked the way an operator would check it.

repohost-repo keeps the repository and runs the backup timers of repohost-db1 (stanza db1) and
repohost-db2 (stanza db2). db1 pushes WAL to it through pgBackRest's TLS server, db2 over SSH
(pgbackrest_repository_transport: ssh): keys generated and exchanged by the role, host keys pinned.
"""

import json
import os
import re
import subprocess
import time

import pytest
import testinfra
from testhosts import psql, recap, run_log, run_playbook

REPO = 'repohost-repo'
DATABASES = {'repohost-db1': 'db1', 'repohost-db2': 'db2'}
ALL = [REPO] + sorted(DATABASES)
TLS_HOSTS = [REPO, 'repohost-db1']
SSH_DATABASE = 'repohost-db2'
# Both ends of the SSH transport, each with the other one.
SSH_PAIRS = [(SSH_DATABASE, REPO), (REPO, SSH_DATABASE)]
POSTGRES_SSH = '/var/lib/postgresql/.ssh'
PASSPHRASE = 'pgops-test-Passphrase-4f9c2e7a1b'
VERSION = '2.55.1'
JOBS = ('full', 'diff', 'incr', 'verify')
# Trees that hold no file the role or the tests write (packages, kernel views): skipped for speed.
PRUNE = ' -o '.join('-path %s' % p for p in ('/proc', '/sys', '/usr/lib', '/usr/share', '/usr/bin', '/usr/sbin', '/var/lib/apt'))
SCENARIO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
ROOT = os.path.abspath(os.path.join(SCENARIO, '..', '..'))


def host(name):
    return testinfra.get_host('podman://%s' % name)


def pgbackrest(name, *args):
    return host(name).run('runuser -u postgres -- pgbackrest %s' % ' '.join(args))


def info(name, stanza):
    cmd = pgbackrest(name, '--stanza=%s' % stanza, '--output=json', 'info')
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)[0]


def playbook(path, *extra):
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'], path] + list(extra)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def flat(text):
    return ' '.join(text.split())


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail('%s within %d s' % (what, seconds))


def switch_wal(name):
    """Write something, switch to a new segment and return the name of the segment switched from."""
    psql(host(name), 'CREATE TABLE IF NOT EXISTS wal_probe (t timestamptz); INSERT INTO wal_probe VALUES (now())')
    segment = psql(host(name), 'SELECT pg_walfile_name(pg_current_wal_lsn())')
    psql(host(name), 'SELECT pg_switch_wal()')
    return segment


def archived_on_repository(stanza, segment):
    """True when the repository host holds the segment (a file per segment in the posix repository)."""
    cmd = host(REPO).run('ls /var/lib/pgbackrest/archive/%s/17-1/%s/' % (stanza, segment[:16]))
    return cmd.rc == 0 and any(f.startswith(segment + '-') for f in cmd.stdout.split())


def test_versions_are_checked_and_reported():
    log = flat(run_log('converge'))
    for name in DATABASES:
        assert 'pgBackRest %s on database host %s and on repository host %s' % (VERSION, name, REPO) in log


def test_a_version_mismatch_stops_the_role_with_both_versions():
    rc, output = playbook(os.path.join(SCENARIO, 'parity-mismatch.yml'))
    assert rc != 0, output
    text = flat(output)
    assert 'repository host %s runs %s, database host repohost-db2 runs 2.45.0' % (REPO, VERSION) in text
    counts = recap(output)
    assert counts.get('repohost-db2', {}).get('failed') == 1, output
    assert counts.get('repohost-db1', {}).get('failed') == 0, output


@pytest.mark.parametrize('name', TLS_HOSTS)
def test_every_tls_host_runs_the_tls_server(name):
    h = host(name)
    assert h.service('pgbackrest-server.service').is_running
    assert h.service('pgbackrest-server.service').is_enabled
    assert h.socket('tcp://0.0.0.0:8432').is_listening


@pytest.mark.parametrize('name', TLS_HOSTS)
def test_certificate_names_the_host_and_comes_from_the_role_ca(name):
    h = host(name)
    cert = '/etc/pgbackrest/tls/%s.crt' % name
    text = h.check_output('openssl x509 -in %s -noout -subject -ext subjectAltName,extendedKeyUsage', cert)
    assert re.search(r'subject=CN\s*=\s*%s$' % name, text, re.MULTILINE), text
    assert 'DNS:%s' % name in text
    assert 'TLS Web Server Authentication' in text and 'TLS Web Client Authentication' in text
    assert h.check_output('openssl verify -CAfile /etc/pgbackrest/tls/ca.crt %s', cert) == '%s: OK' % cert
    key = h.file('/etc/pgbackrest/tls/%s.key' % name)
    assert (key.user, key.group, key.mode) == ('root', 'postgres', 0o640)
    # The CA key stays on the repository host, readable by root only.
    ca_key = h.file('/etc/pgbackrest/ca/ca.key')
    if name == REPO:
        assert (ca_key.user, ca_key.mode) == ('root', 0o600)
        assert (h.file('/etc/pgbackrest/ca').user, h.file('/etc/pgbackrest/ca').mode) == ('root', 0o700)
    else:
        assert not ca_key.exists


def test_clients_are_authorized_by_certificate_cn():
    db1 = host('repohost-db1').file('/etc/pgbackrest/pgbackrest.conf').content_string
    assert 'tls-server-auth=%s=db1' % REPO in db1
    conf = host(REPO).run('cat /etc/pgbackrest/conf.d/pgops-stanza-*.conf').stdout
    assert 'tls-server-auth=repohost-db1=db1' in conf
    # db2 comes over SSH: no certificate is authorized for its stanza.
    assert 'tls-server-auth=repohost-db2' not in conf
    # db1's certificate (CN repohost-db1) is authorized for stanza db1 only: the repository host refuses it for db2.
    denied = pgbackrest('repohost-db1', '--stanza=db2', 'info')
    assert 'access denied' in denied.stdout + denied.stderr, denied.stdout
    assert info('repohost-db1', 'db1')['status']['code'] == 0


def test_ssh_database_host_runs_no_tls_server_and_reaches_the_repository_over_ssh():
    db2 = host(SSH_DATABASE)
    assert not db2.service('pgbackrest-server.service').is_running
    assert not db2.file('/etc/systemd/system/pgbackrest-server.service').exists
    assert not db2.socket('tcp://0.0.0.0:8432').is_listening
    assert not db2.file('/etc/pgbackrest/tls').exists
    conf = db2.file('/etc/pgbackrest/pgbackrest.conf').content_string
    for line in ('repo1-host=%s' % REPO, 'repo1-host-type=ssh', 'repo1-host-user=postgres'):
        assert line in conf.splitlines()
    assert 'tls-' not in conf
    stanza = host(REPO).file('/etc/pgbackrest/conf.d/pgops-stanza-db2.conf').content_string
    for line in ('pg1-host=%s' % SSH_DATABASE, 'pg1-host-type=ssh', 'pg1-host-user=postgres'):
        assert line in stanza.splitlines()
    assert 'tls-' not in stanza
    assert info(SSH_DATABASE, 'db2')['status']['code'] == 0


def entries(name, path):
    """The lines of a file that are not comments (the role's markers are comments)."""
    text = host(name).file(path).content_string
    return [line for line in text.splitlines() if line.strip() and not line.startswith('#')]


def public_key(name, path):
    """'type base64' of an OpenSSH public key file, without its comment."""
    return ' '.join(host(name).file(path).content_string.split()[:2])


@pytest.mark.parametrize('name, peer', SSH_PAIRS)
def test_known_hosts_pins_exactly_the_host_key_of_the_other_side(name, peer):
    assert entries(name, POSTGRES_SSH + '/known_hosts') == ['%s %s' % (peer, public_key(peer, '/etc/ssh/ssh_host_ed25519_key.pub'))]


@pytest.mark.parametrize('name, peer', SSH_PAIRS)
def test_authorized_keys_holds_the_postgres_key_of_the_other_side_restricted(name, peer):
    keys = entries(name, POSTGRES_SSH + '/authorized_keys')
    assert len(keys) == 1
    options, key = keys[0].split(' ', 1)
    assert options == 'restrict'
    assert key.startswith(public_key(peer, POSTGRES_SSH + '/id_ed25519.pub') + ' ')
    f = host(name).file(POSTGRES_SSH + '/authorized_keys')
    assert (f.user, f.mode) == ('postgres', 0o600)


@pytest.mark.parametrize('name', [REPO, SSH_DATABASE])
def test_ssh_private_key_belongs_to_postgres_alone_and_host_keys_are_never_skipped(name):
    h = host(name)
    key = h.file(POSTGRES_SSH + '/id_ed25519')
    assert (key.user, key.group, key.mode) == ('postgres', 'postgres', 0o600)
    assert (h.file(POSTGRES_SSH).user, h.file(POSTGRES_SSH).mode) == ('postgres', 0o700)
    found = h.run('grep -rli stricthostkeychecking /etc/pgbackrest %s/config', POSTGRES_SSH)
    assert found.stdout == ''
    # ssh may not add the peer's other host keys to known_hosts on its own.
    assert 'UpdateHostKeys no' in h.file(POSTGRES_SSH + '/config').content_string.splitlines()


@pytest.mark.parametrize('name, peer', SSH_PAIRS)
def test_ssh_reaches_the_pinned_peer_and_refuses_a_name_that_is_not_pinned(name, peer):
    h = host(name)
    ok = h.run('runuser -u postgres -- ssh -o BatchMode=yes %s true', peer)
    assert ok.rc == 0, ok.stderr
    # The same host under its address: not in known_hosts, so ssh refuses it instead of trusting it.
    address = h.check_output('getent ahostsv4 %s | head -n 1 | cut -d " " -f 1', peer)
    refused = h.run('runuser -u postgres -- ssh -o BatchMode=yes %s true', address)
    assert refused.rc != 0
    assert 'Host key verification failed' in refused.stderr, refused.stderr


def test_backup_timers_run_on_the_repository_host_only():
    repo = host(REPO)
    for stanza in DATABASES.values():
        for job in JOBS:
            unit = 'pgbackrest-%s-%s' % (stanza, job)
            assert repo.service(unit + '.timer').is_enabled
            assert repo.service(unit + '.timer').is_running
            assert repo.check_output('systemctl show -P ExecCondition %s.service', unit) == ''
    for name in DATABASES:
        assert host(name).run('ls /etc/systemd/system/pgbackrest-*.timer').rc != 0


@pytest.mark.parametrize('name', sorted(DATABASES))
def test_scheduled_backup_lands_on_the_repository_host(name):
    stanza = DATABASES[name]
    repo = host(REPO)
    before = {b['label'] for b in info(REPO, stanza)['backup']}
    cmd = repo.run('systemctl start pgbackrest-%s-incr.service', stanza)
    assert cmd.rc == 0, repo.check_output('journalctl -u pgbackrest-%s-incr.service -n 30 --no-pager', stanza)
    new = [b for b in info(REPO, stanza)['backup'] if b['label'] not in before]
    assert [b['type'] for b in new] == ['incr']
    assert repo.file('/var/lib/pgbackrest/backup/%s/%s' % (stanza, new[0]['label'])).is_directory
    record = json.loads(repo.file('/var/lib/pgops-backup/records/pgbackrest-backup-%s-incr.json' % stanza).content_string)
    assert record['status'] == 'ok' and record['label'] == new[0]['label']
    # The database host sees the same backups through the repository host, and keeps none itself.
    assert new[0]['label'] in {b['label'] for b in info(name, stanza)['backup']}
    assert host(name).run('ls /var/lib/pgbackrest/backup').rc != 0


def test_backup_now_playbook_runs_on_the_repository_host():
    before = {b['label'] for b in info(REPO, 'db2')['backup']}
    rc, output = run_playbook('backup_now.yml', '-e', 'backup_type=diff', '-e', 'reason=molecule', '--limit', 'repohost-db2')
    assert rc == 0, output
    assert '[repohost-db2 -> repohost-repo]' in output
    new = [b for b in info(REPO, 'db2')['backup'] if b['label'] not in before]
    assert [(b['type'], b['annotation']) for b in new] == [('diff', {'reason': 'molecule'})]


@pytest.mark.parametrize('name', sorted(DATABASES))
def test_wal_from_the_database_host_arrives(name):
    stanza = DATABASES[name]
    segment = switch_wal(name)
    wait_for(lambda: archived_on_repository(stanza, segment), 60, 'segment %s of %s did not reach %s' % (segment, name, REPO))


@pytest.mark.parametrize('name, stanza', sorted(DATABASES.items()) + [(REPO, s) for s in sorted(DATABASES.values())])
def test_check_passes_from_every_host(name, stanza):
    cmd = pgbackrest(name, '--stanza=%s' % stanza, 'check')
    assert cmd.rc == 0, cmd.stdout + cmd.stderr


def test_point_in_time_recovery_of_one_database_host_from_the_repository_host():
    """playbooks/pitr.yml restores db1 from the repository host's backups into a scratch instance."""
    db1 = host('repohost-db1')
    psql(db1, 'CREATE TABLE pitr_probe (id int, note text)')
    psql(db1, "INSERT INTO pitr_probe SELECT g, 'before' FROM generate_series(1, 100) g")
    target = psql(db1, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.2)
    psql(db1, "INSERT INTO pitr_probe SELECT g, 'after' FROM generate_series(101, 150) g")
    segment = switch_wal('repohost-db1')
    wait_for(lambda: archived_on_repository('db1', segment), 60, 'segment %s did not reach the repository host' % segment)
    rc, output = playbook(os.path.join(ROOT, 'playbooks', 'pitr.yml'), '-e', 'pgops_target=repohost-db1',
                          '-e', 'pitr_time="%s"' % target, '-e', 'pitr_destination=elsewhere',
                          '-e', 'pitr_scratch_port=5499', '-e', 'pitr_scratch_state=running')
    assert rc == 0, output
    rows = db1.check_output('runuser -u postgres -- psql -XAtq -p 5499 -c %s',
                            'SELECT note, count(*) FROM pitr_probe GROUP BY note ORDER BY note')
    assert rows == 'before|100'
    assert db1.check_output('runuser -u postgres -- psql -XAtq -p 5499 -c %s', 'SHOW archive_mode') == 'off'
    # The source is untouched.
    assert psql(db1, 'SELECT count(*) FROM pitr_probe') == '150'


def archiver_metric(name, which):
    """A sample of what the monitoring role exports, read from `pgops-backup metrics` on the database
    host: which = 'failing' (pgops_backup_archiver_failing) or 'ready_segments' (pgops_backup_wal_ready_segments)."""
    metric = {'failing': 'pgops_backup_archiver_failing', 'ready_segments': 'pgops_backup_wal_ready_segments'}[which]
    text = host(name).check_output('pgops-backup --quiet metrics --textfile-dir - --stanza %s', DATABASES[name])
    values = re.findall(r'^%s\{[^}]*stanza="%s"[^}]*\} (\S+)$' % (metric, DATABASES[name]), text, re.MULTILINE)
    assert len(values) == 1, text
    return float(values[0])


def key_material(name):
    """A line of base64 out of each private key of the host: what must never leak."""
    paths = ['/etc/pgbackrest/tls/%s.key' % name] if name in TLS_HOSTS else []
    paths += ['/etc/pgbackrest/ca/ca.key'] if name == REPO else []
    lines = [host(name).check_output('sed -n 2p %s', path) for path in paths]
    # OpenSSH keys: the second line is the same for every unencrypted ed25519 key; the fourth holds the secret seed.
    if name in (REPO, SSH_DATABASE):
        lines.append(host(name).check_output('sed -n 4p %s/id_ed25519', POSTGRES_SSH))
    return lines


@pytest.mark.parametrize('name', ALL)
def test_no_secret_in_process_arguments_or_world_readable_files(name):
    h = host(name)
    secrets = [PASSPHRASE] + key_material(name)
    assert all(len(s) > 20 for s in secrets)
    args = h.check_output('ps -eo args')
    assert not [s for s in secrets if s in args]
    found = h.run("find / -xdev \\( %s \\) -prune -o -type f -perm -o=r -size -2M -print0"
                  " | xargs -0 grep -lF %s 2>/dev/null" % (PRUNE, ' '.join("-e '%s'" % s for s in secrets)))
    assert found.stdout.split() == []


def test_no_secret_in_converge_output():
    secrets = [PASSPHRASE] + [line for name in ALL for line in key_material(name)]
    for step in ('converge', 'idempotence'):
        for kind in ('log', 'out'):
            text = run_log(step, kind)
            assert 'PLAY RECAP' in text
            assert not [s for s in secrets if s in text], '%s.%s' % (step, kind)
    assert '<repohost-repo>' in run_log('converge'), 'the converge log is not at -vvv'


def failed_count(name):
    return int(psql(host(name), 'SELECT failed_count FROM pg_stat_archiver'))


def ready_files(name):
    return host(name).check_output('ls /var/lib/postgresql/17/main/pg_wal/archive_status/').split()


def test_an_unreachable_repository_host_fails_archiving_visibly_and_no_wal_is_lost():
    """Stop the repository host: on both database hosts archive_command fails (pg_stat_archiver,
    pgops-backup check record, the archiver metrics the monitoring role exports). Start it again: every
    segment written meanwhile reaches the repository (db1 over TLS, db2 over SSH) and the metrics say
    archiving is healthy again. One outage for both, as it happens."""
    failed_before = {name: failed_count(name) for name in DATABASES}
    written = {}
    subprocess.run(['podman', 'stop', '-t', '10', REPO], check=True, stdout=subprocess.DEVNULL)
    try:
        for name in sorted(DATABASES):
            written[name] = [switch_wal(name) for attempt in range(3)]
        for name, stanza in sorted(DATABASES.items()):
            wait_for(lambda n=name: failed_count(n) > failed_before[n], 90,
                     'pg_stat_archiver.failed_count of %s did not rise while the repository host was down' % name)
            check = host(name).run('pgops-backup --quiet --run-as postgres check --stanza %s', stanza)
            assert check.rc != 0
            record = json.loads(host(name).file('/var/lib/pgops-backup/records/pgbackrest-check-%s.json' % stanza).content_string)
            assert record['status'] == 'failed', record
            assert any(s + '.ready' in ready_files(name) for s in written[name]), ready_files(name)
            assert archiver_metric(name, 'failing') == 1
            assert archiver_metric(name, 'ready_segments') >= 1
    finally:
        subprocess.run(['podman', 'start', REPO], check=True, stdout=subprocess.DEVNULL)
    for port in (8432, 22):
        wait_for(lambda p=port: host(REPO).socket('tcp://0.0.0.0:%d' % p).is_listening, 60,
                 'the repository host did not listen on %d again' % port)
    for name in sorted(DATABASES):
        written[name].append(switch_wal(name))
    for name, stanza in sorted(DATABASES.items()):
        for segment in written[name]:
            wait_for(lambda s=segment, st=stanza: archived_on_repository(st, s), 120,
                     'segment %s of %s written during the outage did not reach the repository host' % (segment, name))
        # Nothing left behind (a segment switched by archive_timeout meanwhile is pushed within seconds).
        wait_for(lambda n=name: not [f for f in ready_files(n) if f.endswith('.ready')], 60,
                 'segments still waiting to be archived on %s' % name)
        cmd = pgbackrest(name, '--stanza=%s' % stanza, 'check')
        assert cmd.rc == 0, cmd.stdout + cmd.stderr
        assert host(name).run('pgops-backup --quiet --run-as postgres check --stanza %s', stanza).rc == 0
        wait_for(lambda n=name: archiver_metric(n, 'failing') == 0 and archiver_metric(n, 'ready_segments') == 0, 30,
                 'the archiver metrics of %s did not return to healthy' % name)
