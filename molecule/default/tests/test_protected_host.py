"""A host protected by the pgbackrest role, checked the way an operator would check it."""

import json
import os
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


# --- block incremental: an incremental stores the changed blocks, and the chain restores exactly -----

BLOCK_TABLE = 'pgops_block_check'
ROWS_SQL = "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM %s" % BLOCK_TABLE


def pgbackrest_version(host):
    return tuple(int(part) for part in host.check_output('pgbackrest version').split()[1].split('.')[:2])


def backup(host, kind):
    out = host.check_output('pgops-backup --quiet --json backup --stanza %s --type %s', STANZA, kind)
    return json.loads(out)['label']


def test_block_incremental_is_on_where_the_installed_pgbackrest_has_it(host):
    conf = host.file('/etc/pgbackrest/pgbackrest.conf').content_string
    if pgbackrest_version(host) >= (2, 46):
        assert 'repo1-block=y' in conf and 'repo1-bundle=y' in conf
    else:  # Debian 12's 2.45: file-level incrementals, and the role said so
        assert 'repo1-block' not in conf and 'repo1-bundle' not in conf
        said = ' '.join(run_log('converge').split())
        assert 'on %s: file-level incrementals (block incremental needs 2.46 or later' % host.backend.hostname in said


def test_an_incremental_after_a_hot_set_update_restores_exactly(host):
    # ~30 MB of incompressible rows, frozen before the full backup so that only the update changes pages.
    psql(host, 'DROP TABLE IF EXISTS %s; CREATE TABLE %s (id int PRIMARY KEY, v text); '
               'INSERT INTO %s SELECT i, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 300000) i'
               % (BLOCK_TABLE, BLOCK_TABLE, BLOCK_TABLE))
    psql(host, 'VACUUM (FREEZE, ANALYZE) %s' % BLOCK_TABLE)
    psql(host, 'CHECKPOINT')
    table_bytes = int(psql(host, "SELECT pg_relation_size('%s')" % BLOCK_TABLE))
    full = backup(host, 'full')
    psql(host, 'UPDATE %s SET v = upper(v) WHERE id <= 3000' % BLOCK_TABLE)  # a hot set: 1% of the rows
    psql(host, 'CHECKPOINT')
    incr = backup(host, 'incr')
    sets = dict((b['label'], b['info']['repository']) for b in info(host)['backup'])
    repository = sets[incr]
    # What the closing notes quote: table size, and what the full and the incremental stored.
    with open(os.path.join(os.environ['PGOPS_LOG_DIR'], 'default-block-%s.json' % host.backend.hostname), 'w') as out:
        json.dump({'pgbackrest': '.'.join(map(str, pgbackrest_version(host))), 'table_bytes': table_bytes,
                   'full_repo_delta': sets[full]['delta'], 'incr_repo_delta': repository['delta'],
                   'incr_block_map': 'size-map' in repository}, out)
    if pgbackrest_version(host) >= (2, 46):
        # Block incremental: a block map, and far less than the changed file itself.
        assert 'size-map' in repository, repository
        assert repository['delta'] < table_bytes * 0.1, (repository, table_bytes)
    expected = psql(host, ROWS_SQL)
    drill = host.run('pgops-backup --quiet --json restore-test --source pgbackrest --stanza %s --set %s '
                     '--name block-chain --heartbeat off --sql-check rows %s %s',
                     STANZA, incr, ROWS_SQL, expected)
    assert drill.rc == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
    report = json.loads(drill.stdout)
    assert report['status'] == 'ok' and report['backup_label'] == incr, report
    assert dict((c['name'], c['status']) for c in report['checks'])['sql:rows'] == 'pass', report['checks']
