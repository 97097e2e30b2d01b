"""Restore drills with the restore_test role, checked the way an operator would check them.

Order matters: the tests run top to bottom on each host. The first one notes the production
cluster's state; every drill is followed by the proof that production is untouched: same postmaster,
the archive only grown by production's own WAL, nothing of the scratch instance's timeline in it.
The sabotage tests repair what they break.
"""

import json
import re
import time

import pytest
from testhosts import molecule_hosts, psql, run_playbook

testinfra_hosts = molecule_hosts()

RECORDS = '/var/lib/pgops-backup/records'
DRILL_FILE = '/etc/pgops-backup/restore-test-%s.json'
ARCHIVE = '/var/lib/pgbackrest/archive'
BACKUPS = '/var/lib/pgbackrest/backup/main'
DUMPS = '/var/backups/pgops-dump'
SCRATCH = '/var/lib/postgresql/pgops-scratch'
PGBACKREST_CHECKS = {'source', 'restore', 'recovery', 'isolation', 'heartbeat', 'amcheck appdb', 'amcheck postgres',
                     'full_read appdb', 'full_read postgres', 'sql:orders', 'checksums'}
PG_DUMP_CHECKS = {'source', 'restore appdb', 'restore postgres', 'row_counts appdb', 'row_counts postgres', 'isolation',
                  'heartbeat', 'amcheck appdb', 'amcheck postgres', 'full_read appdb', 'full_read postgres', 'checksums'}
BEFORE = {}


def only_debian13(host):
    if not host.backend.hostname.endswith('debian13'):
        pytest.skip('the sabotage paths are version independent: Debian 13 only, to keep the suite short')


def labels(report):
    return set((('%s %s' % (c['name'], c['database'])) if c['database'] else c['name']) for c in report['checks'])


def drill(host, name, *extra):
    """A drill as its timer runs it (user postgres), the report as JSON on stdout."""
    cmd = host.run('runuser -u postgres -- pgops-backup --quiet --json restore-test --drill-file %s'
                   + ' %s' * len(extra), DRILL_FILE % name, *extra)
    assert cmd.stdout.strip(), cmd.stderr
    return cmd.rc, json.loads(cmd.stdout)


def record(host, name):
    return json.loads(host.file('%s/%s.json' % (RECORDS, name)).content_string)


def pgbackrest_info(host):
    return json.loads(host.check_output('runuser -u postgres -- pgbackrest --stanza=main --output=json info'))[0]


def backup(host, kind):
    host.check_output('runuser -u postgres -- pgops-backup --quiet backup --stanza main --type %s', kind)
    return pgbackrest_info(host)['backup'][-1]['label']


def production(host):
    start, timeline, walfile, failed = psql(
        host, "SELECT pg_postmaster_start_time(), (SELECT timeline_id FROM pg_control_checkpoint()), "
              "pg_walfile_name(pg_current_wal_lsn()), (SELECT failed_count FROM pg_stat_archiver)").split('|')
    # WAL segments, backup labels and history files (archive.info is re-saved, re-encrypted, by every backup).
    listing = {}
    for line in host.check_output("cd %s && find . -type f -name '[0-9A-F]*' -exec sha256sum {} +", ARCHIVE).splitlines():
        digest, path = line.split(None, 1)
        listing[path[2:]] = digest
    info = pgbackrest_info(host)
    stanza = (sorted((d['id'], d['system-id'], d['version']) for d in info['db']), sorted(a['id'] for a in info['archive']))
    return {'start': start, 'timeline': int(timeline), 'walfile': walfile, 'failed': int(failed), 'archive': listing,
            'stanza': stanza}


def assert_production_untouched(host, report=None):
    """Same postmaster; the archive only grown by production's own WAL: every file that was there is
    unchanged, every new file is a segment (or backup label) of production's timeline up to its current
    WAL file, no timeline history; nothing failed to archive; pgBackRest's archive max agrees."""
    before = BEFORE[host.backend.hostname]
    now = production(host)
    assert now['start'] == before['start'], 'the production postmaster was restarted'
    assert now['timeline'] == before['timeline']
    assert now['failed'] == before['failed'], 'archiving failed during the drill'
    assert now['stanza'] == before['stanza'], 'the stanza\'s database history changed'
    archive_min = min(a['min'] for a in pgbackrest_info(host)['archive'])
    for path, facts in before['archive'].items():
        if path in now['archive']:
            assert now['archive'][path] == facts, '%s changed in the archive' % path
        else:
            # only production's own retention (expire after a new full backup) removes WAL
            assert path.rsplit('/', 1)[-1][:24] < archive_min, '%s was removed from the archive' % path
    tli = '%08X' % now['timeline']
    for path in set(now['archive']) - set(before['archive']):
        name = path.rsplit('/', 1)[-1]
        assert not name.endswith('.history'), 'a timeline history file was archived: %s' % path
        assert re.match(r'^[0-9A-F]{24}', name), path
        assert name.startswith(tli), 'WAL of another timeline was archived: %s' % path
        assert name[:24] <= now['walfile'], '%s is beyond production\'s current WAL %s' % (path, now['walfile'])
    archive_max = max(a['max'] for a in pgbackrest_info(host)['archive'])
    assert archive_max.startswith(tli) and archive_max <= now['walfile']
    if report is not None:
        # the scratch copy did write WAL, on a timeline of its own, which never reached the archive
        assert report['timeline'] and report['timeline'] != now['timeline']


def assert_scratch_gone(host):
    assert host.check_output('ls -A %s', SCRATCH) == ''
    assert host.run('pgrep -f %s', 'pgops-scratc[h]').rc == 1, 'a scratch server still runs'
    sockets = host.check_output('ls -A /var/run/postgresql').split()
    assert [s for s in sockets if s.startswith('.s.PGSQL.') and not s.startswith('.s.PGSQL.5432')] == []


# --- the role's result -----------------------------------------------------------------------------

def test_units_are_installed(host):
    BEFORE[host.backend.hostname] = production(host)
    for name in ('pgbackrest', 'pg_dump'):
        timer = host.service('pgops-restore-test-%s.timer' % name)
        assert timer.is_enabled and timer.is_running
        service = 'pgops-restore-test-%s.service' % name
        assert host.check_output('systemctl show -P User %s', service) == 'postgres'
        assert host.check_output('systemctl show -P OnFailure %s', service) == 'pgops-notify@%s.service' % service
        assert DRILL_FILE % name in host.check_output('systemctl show -P ExecStart %s', service)
        settings = host.file(DRILL_FILE % name)
        assert settings.user == 'root' and settings.group == 'postgres' and settings.mode == 0o640
        assert json.loads(settings.content_string)['heartbeat'] == 'required'
    calendar = host.check_output('systemctl show -P TimersCalendar pgops-restore-test-pgbackrest.timer')
    assert 'OnCalendar=Sun *-*-* 05:00:00' in calendar
    assert host.service('pgops-heartbeat.timer').is_running


def test_the_heartbeat_is_written_every_minute(host):
    age = float(psql(host, 'SELECT extract(epoch FROM now() - beat_at) FROM public.pgops_heartbeat'))
    assert 0 <= age < 130
    assert record(host, 'heartbeat')['status'] == 'ok'


# --- drills that pass ------------------------------------------------------------------------------------

def test_a_pgbackrest_drill_passes_and_leaves_nothing_behind(host):
    label = backup(host, 'incr')
    rc, report = drill(host, 'pgbackrest')
    assert rc == 0, report['error']
    assert report['status'] == 'ok' and report['backup_label'] == label
    assert labels(report) == PGBACKREST_CHECKS
    assert all(c['status'] == 'pass' for c in report['checks']), report['lines']
    checks = dict((c['name'], c) for c in report['checks'])
    assert 'archive_mode=off' in checks['isolation']['detail']
    assert checks['heartbeat']['lag_seconds'] < 300 and report['rpo_seconds'] < 600
    assert 0 < report['rto_seconds'] < report['phases']['total']
    for phase in ('preflight', 'restore', 'start', 'recovery', 'checks', 'stop', 'checksums', 'cleanup'):
        assert phase in report['phases'], phase
    assert report['scratch']['state'] == 'removed'
    assert record(host, 'restore_test-pgbackrest')['status'] == 'ok'
    assert_scratch_gone(host)
    assert_production_untouched(host, report)


def test_a_pg_dump_drill_passes_and_leaves_nothing_behind(host):
    host.check_output('systemctl start pg-dump-nightly.service')
    rc, report = drill(host, 'pg_dump')
    assert rc == 0, report['error']
    assert labels(report) == PG_DUMP_CHECKS
    assert all(c['status'] == 'pass' for c in report['checks']), report['lines']
    counts = [c for c in report['checks'] if c['name'] == 'row_counts' and c['database'] == 'appdb'][0]
    assert counts['detail'].startswith('4 tables, 7500 rows: exactly the counts of the manifest')
    assert report['dump_set']['job'] == 'nightly'
    assert_scratch_gone(host)
    assert_production_untouched(host)


# --- sabotage -------------------------------------------------------------------------------------------

def test_a_corrupt_file_in_the_repository_fails_the_drill_and_is_named(host):
    only_debian13(host)
    # the largest file stored in the newest backup set (the incremental of the first drill test): a file of
    # pg_data, or with file bundling (pgBackRest 2.46+, block incremental on) possibly a bundle of files
    label = pgbackrest_info(host)['backup'][-1]['label']
    size, path = host.check_output("find %s/%s -type f ! -name 'backup.manifest*' -printf '%%s %%p\\n' "
                                   "| sort -n | tail -n 1", BACKUPS, label).split(' ', 1)
    host.check_output('cp -p %s /root/restore_test-saved-file', path)
    try:
        host.check_output('printf CORRUPTCORRUPTCORRUPTCORRUPT0123 | dd of=%s bs=1 seek=%s conv=notrunc status=none',
                          path, str(int(size) // 2))
        rc, report = drill(host, 'pgbackrest')
    finally:
        host.check_output('cp -p /root/restore_test-saved-file %s', path)
    assert rc == 1 and report['status'] == 'failed' and report['failed_checks'] == ['restore']
    assert any(word in report['error'] for word in ('Data corruption detected', 'checksum', 'corrupt')), report['error']
    relative = path[len(BACKUPS) + 1:]
    if '/pg_data/' in path and not path.endswith('.pgbi'):  # a whole file: pgBackRest names it
        assert "invalid checksum '%s'" % relative in report['error'], report['error']
    assert record(host, 'restore_test-pgbackrest')['status'] == 'failed'
    assert_scratch_gone(host)
    assert_production_untouched(host)


def test_a_truncated_dump_fails_the_drill_and_is_named(host):
    only_debian13(host)
    unit = '%s/appdb/%s' % (DUMPS, sorted(host.check_output('ls %s/appdb', DUMPS).split())[-1])
    host.check_output('cp -p %s/appdb.dump /root/restore_test-appdb.dump', unit)
    try:
        host.check_output('truncate -s 1000 %s/appdb.dump', unit)
        rc, report = drill(host, 'pg_dump')
    finally:
        host.check_output('cp -p /root/restore_test-appdb.dump %s/appdb.dump', unit)
    assert rc == 1 and report['failed_checks'] == ['restore appdb']
    assert 'does not match its manifest: appdb.dump has 1000 bytes' in report['error']
    assert_scratch_gone(host)


def test_rows_changed_after_the_manifest_was_taken_fail_the_drill(host):
    only_debian13(host)
    unit = '%s/appdb/%s' % (DUMPS, sorted(host.check_output('ls %s/appdb', DUMPS).split())[-1])
    manifest = json.loads(host.file(unit + '/manifest.json').content_string)
    host.check_output('cp -p %s/manifest.json /root/restore_test-manifest.json', unit)
    for table in manifest['tables']:
        if table['name'] == 'orders':
            table['rows'] += 1
    try:
        host.check_output("printf '%%s' %s > %s/manifest.json", json.dumps(manifest), unit)
        rc, report = drill(host, 'pg_dump')
    finally:
        host.check_output('cp -p /root/restore_test-manifest.json %s/manifest.json', unit)
    assert rc == 1 and report['failed_checks'] == ['row_counts appdb']
    assert 'public.orders: row count differs (manifest 5001, restored 5000)' in report['error']
    assert_scratch_gone(host)


def test_a_failing_sql_check_fails_the_drill_and_keep_failed_keeps_the_copy(host):
    only_debian13(host)
    rc, report = drill(host, 'pgbackrest', '--keep-failed', '--no-amcheck', '--no-full-read',
                       '--sql-check', 'orders today', "SELECT count(*) FROM orders", '4999', '--sql-database', 'appdb')
    assert rc == 1 and report['failed_checks'] == ['sql:orders today']
    assert "sql:orders today: expected '4999', got '5000' (database appdb)" in report['error']
    assert report['kept'] is True
    kept = report['scratch']['data_directory']
    assert host.file(kept).is_directory and host.run('pgrep -f %s', 'pgops-scratc[h]').rc == 1, 'kept, and stopped'
    host.check_output('runuser -u postgres -- pgops-backup restore-test --drill-file %s --remove-kept',
                      DRILL_FILE % 'pgbackrest')
    assert_scratch_gone(host)
    assert_production_untouched(host)


# --- the reserve on production's file systems (issue 12) ---------------------------------------------------

def test_a_drill_that_would_eat_the_reserve_of_the_primary_is_refused(host):
    """The scratch directory shares the primary's file system: a reserve of 99% cannot be kept, so the
    drill is refused before anything is restored."""
    only_debian13(host)
    for name in ('pgbackrest', 'pg_dump'):
        rc, report = drill(host, name, '--scratch-reserve', '99%')
        assert rc == 1 and report['failed_checks'] == ['source'], report['lines']
        assert 'below the reserve of' in report['error'] and '(scratch reserve 99% of the file system)' in report['error']
        assert re.search(r'the data directory of \d+/main \(/var/lib/postgresql/\d+/main\)', report['error'])
        assert 'scratch_base_dir' in report['hint']
        assert not report.get('phases', {}).get('restore')
        assert_scratch_gone(host)
    assert_production_untouched(host)


def test_a_scratch_file_system_too_small_for_the_copy_is_refused(host):
    """A small tmpfs over the scratch directory: a file system of its own (no reserve applies), but the
    restored copy does not fit, so the drill is refused before anything is restored."""
    only_debian13(host)
    host.check_output('mount -t tmpfs -o size=16m,mode=0700,uid=postgres,gid=postgres pgops-scratch-test %s', SCRATCH)
    try:
        rc, report = drill(host, 'pgbackrest')
        assert rc == 1 and report['failed_checks'] == ['source'], report['lines']
        assert 'not enough free space in %s for the scratch instance' % SCRATCH in report['error']
        assert host.check_output('ls -A %s', SCRATCH) == ''
    finally:
        host.check_output('umount %s', SCRATCH)
    assert_scratch_gone(host)
    assert_production_untouched(host)


# --- the timer and the playbook ----------------------------------------------------------------------------

def test_the_timers_service_writes_the_report(host):
    started = int(time.time())
    host.check_output('systemctl start pgops-restore-test-pgbackrest.service')
    data = record(host, 'restore_test-pgbackrest')
    assert data['status'] == 'ok' and data['finished_epoch'] >= started - 5 and data['duration_seconds'] > 0
    assert labels(data) == PGBACKREST_CHECKS
    journal = host.check_output('journalctl -u pgops-restore-test-pgbackrest.service --no-pager -o cat -n 40')
    assert 'Restore drill pgbackrest on ' in journal and ': PASSED' in journal
    assert_scratch_gone(host)


def test_the_playbook_runs_a_drill_now_and_prints_the_report():
    checks = {'restore_test_sql_checks': [{'name': 'appdb orders', 'query': 'SELECT count(*) FROM orders',
                                           'expected': '5000', 'database': 'appdb'}]}
    rc, out = run_playbook('restore_test.yml', '-e', json.dumps(checks))
    assert rc == 0, out[-3000:]
    assert out.count(': PASSED') == len(testinfra_hosts), out[-3000:]
    assert 'sql:appdb orders' in out and 'restore drill pgbackrest passed' in out


def test_production_was_untouched_by_every_drill(host):
    assert_production_untouched(host)
    assert_scratch_gone(host)
