"""A host protected by the pgbackrest role, checked the way an operator would check it."""

import json
import time

import pytest
from testhosts import molecule_hosts, psql, recap, run_log, run_playbook

testinfra_hosts = molecule_hosts()

PASSPHRASE = 'pgops-test-Passphrase-4f9c2e7a1b'
STANZA = 'main'
CALENDARS = {
    'full': 'Sun *-*-* 01:00:00',
    'diff': 'Mon..Sat *-*-* 01:00:00',
    'incr': '*-*-* *:30:00',
    'verify': 'Sat *-*-* 04:00:00',
}


def info(host):
    out = host.check_output('runuser -u postgres -- pgbackrest --stanza=%s --output=json info', STANZA)
    return json.loads(out)[0]


def test_archive_mode_is_on(host):
    assert psql(host, 'SHOW archive_mode') == 'on'
    # archive_timeout: the role's 60 s until side_effect.yml changes it (test_reload_not_restart.py).
    assert psql(host, 'SHOW archive_command') == 'pgbackrest --stanza=main archive-push %p'


def test_switched_wal_segment_reaches_the_repository(host):
    psql(host, 'CREATE TABLE IF NOT EXISTS wal_probe (t timestamptz); INSERT INTO wal_probe VALUES (now())')
    segment = psql(host, 'SELECT pg_walfile_name(pg_current_wal_lsn())')
    psql(host, 'SELECT pg_switch_wal()')
    deadline = time.time() + 60
    while time.time() < deadline:
        stanza = info(host)
        if any(a['max'] and a['max'] >= segment for a in stanza['archive']):
            return
        time.sleep(1)
    pytest.fail('segment %s did not reach the repository within 60 s: %s' % (segment, stanza['archive']))


def test_stanza_is_ok_with_a_full_backup(host):
    stanza = info(host)
    assert stanza['status']['code'] == 0, stanza['status']
    assert any(b['type'] == 'full' for b in stanza['backup'])
    assert stanza['cipher'] == 'aes-256-cbc'


@pytest.mark.parametrize('job', sorted(CALENDARS))
def test_timer_is_enabled_with_its_calendar(host, job):
    timer = host.service('pgbackrest-%s-%s.timer' % (STANZA, job))
    assert timer.is_enabled
    assert timer.is_running
    calendar = host.check_output('systemctl show -P TimersCalendar pgbackrest-%s-%s.timer', STANZA, job)
    normalized = host.check_output('systemd-analyze calendar %s | sed -n "s/^  Normalized form: //p"',
                                   CALENDARS[job])
    assert 'OnCalendar=%s' % normalized in calendar
    assert host.check_output('systemctl show -P Persistent pgbackrest-%s-%s.timer', STANZA, job) == 'yes'


def test_incremental_service_takes_an_incremental_backup(host):
    before = {b['label'] for b in info(host)['backup']}
    cmd = host.run('systemctl start pgbackrest-%s-incr.service', STANZA)
    assert cmd.rc == 0, host.check_output('journalctl -u pgbackrest-%s-incr.service -n 30 --no-pager', STANZA)
    new = [b for b in info(host)['backup'] if b['label'] not in before]
    assert [b['type'] for b in new] == ['incr']
    record = json.loads(host.file('/var/lib/pgops-backup/records/pgbackrest-backup-%s-incr.json' % STANZA).content_string)
    assert record['status'] == 'ok'
    assert record['label'] == new[0]['label']
    assert record['duration_seconds'] > 0


def test_config_is_private_to_postgres(host):
    for path, mode in (('/etc/pgbackrest/pgbackrest.conf', 0o640), ('/etc/pgbackrest/conf.d/secrets.conf', 0o600)):
        f = host.file(path)
        assert f.user == 'postgres' and f.group == 'postgres'
        assert f.mode == mode
    assert PASSPHRASE not in host.file('/etc/pgbackrest/pgbackrest.conf').content_string


def test_passphrase_is_not_in_any_process_arguments(host):
    assert PASSPHRASE not in host.check_output('ps -eo args')


def test_passphrase_never_appears_in_converge_output():
    log = run_log('converge')
    assert 'PLAY RECAP' in log
    assert '<default-debian' in log, 'the converge log is not at -vvv'
    assert PASSPHRASE not in log
    assert PASSPHRASE not in run_log('converge', 'out')


def test_check_mode_on_a_configured_host_changes_nothing():
    log = run_log('check')
    hosts = recap(log)
    assert hosts, 'no PLAY RECAP in the check-mode run'
    assert all(counts['changed'] == 0 and counts['failed'] == 0 for counts in hosts.values()), hosts
    assert PASSPHRASE not in log


def test_backup_now_playbook_takes_a_full_backup(host):
    before = {b['label'] for b in info(host)['backup']}
    rc, output = run_playbook('backup_now.yml', '-e', 'backup_type=full', '-e', 'reason=molecule',
                              '--limit', host.backend.hostname)
    assert rc == 0, output
    new = [b for b in info(host)['backup'] if b['label'] not in before]
    assert [b['type'] for b in new] == ['full']
    assert new[0]['annotation'] == {'reason': 'molecule'}
    assert new[0]['label'] in output
