"""Logical backups with the pg_dump role, checked the way an operator would check them.

Order matters: the tests run top to bottom on each host (dump, restore, encryption, retention,
then the failure cases, which must leave the earlier dumps intact).
"""

import json
import re
import time

import pytest
from testhosts import molecule_hosts, psql, recap, run_log, run_playbook

testinfra_hosts = molecule_hosts()

PASSPHRASE = 'pgops-dump-Passphrase-7d3e91c5a2'
DEST = '/var/backups/pgops-dump'
SECURE = '/var/backups/pgops-dump-secure'
AUDIT = '/var/backups/pgops-dump-audit'
RECORDS = '/var/lib/pgops-backup/records'
PASSFILE = '/etc/pgops-backup/pg-dump.passphrase'
JOB_FILE = '/etc/pgops-backup/pg-dump-%s.json'
DIRS = {'Reports \u00dc': 'Reports%20%C3%9C', 'appdb': 'appdb', 'postgres': 'postgres'}
STAMP = re.compile(r'^\d{8}T\d{6}Z(-\d+)?$')


def pg_major(host):
    return int(psql(host, 'SHOW server_version_num')) // 10000


def journal(host, unit):
    return host.check_output('journalctl -u %s --no-pager -n 60', unit)


def units(host, db_dir):
    """Good dump directories of one database directory, oldest first."""
    out = host.check_output('ls -1 %s', db_dir)
    return sorted(n for n in out.splitlines() if STAMP.match(n))


def newest(host, db_dir):
    names = units(host, db_dir)
    assert names, 'no dump in %s' % db_dir
    return '%s/%s' % (db_dir, names[-1])


def manifest(host, unit):
    return json.loads(host.file(unit + '/manifest.json').content_string)


def record(host, name):
    return json.loads(host.file('%s/%s.json' % (RECORDS, name)).content_string)


def pgops(host, *args):
    """pgops-backup as the jobs run it (user postgres), JSON record on stdout."""
    return host.run('runuser -u postgres -- pgops-backup --json ' + ' '.join(['%s'] * len(args)), *args)


def assert_checksums(host, unit):
    data = manifest(host, unit)
    assert data['files'], unit
    for entry in data['files']:
        path = '%s/%s' % (unit, entry['path'])
        digest = host.check_output('sha256sum %s', path).split()[0]
        assert digest == entry['sha256'], path
        f = host.file(path)
        assert f.size == entry['size'], path
        assert f.user == 'postgres' and f.mode == 0o600, path
    return data


def no_partials(host, root):
    found = host.run('find %s -name ".partial-*" -o -name ".restore-*"', root).stdout.split()
    assert found == [], found


def quoted(schema, name):
    return '"%s"."%s"' % (schema.replace('"', '""'), name.replace('"', '""'))


def count(host, db, schema, name):
    return int(psql(host, 'SELECT count(*) FROM ONLY %s' % quoted(schema, name), db=db))


def counts(host, db, tables):
    """Exact rows of many tables in one psql call: [n, ...] in the order given."""
    sql = 'SELECT ' + ', '.join('(SELECT count(*) FROM ONLY %s)' % quoted(t['schema'], t['name']) for t in tables)
    return [int(v) for v in psql(host, sql, db=db).split('|')]


def wait_for(predicate, seconds=60, step=0.5, what='condition'):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    pytest.fail('timed out after %s s waiting for %s' % (seconds, what))


# --- the role's result ---------------------------------------------------------------------------

@pytest.mark.parametrize('job', ['nightly', 'secure', 'audit'])
def test_job_units_are_installed(host, job):
    timer = host.service('pg-dump-%s.timer' % job)
    assert timer.is_enabled and timer.is_running
    service = 'pg-dump-%s.service' % job
    assert host.check_output('systemctl show -P User %s', service) == 'postgres'
    assert host.check_output('systemctl show -P UMask %s', service) == '0077'
    assert host.check_output('systemctl show -P OnFailure %s', service) == 'pgops-notify@%s.service' % service
    assert JOB_FILE % job in host.check_output('systemctl show -P ExecStart %s', service)
    settings = host.file(JOB_FILE % job)
    assert settings.user == 'root' and settings.group == 'postgres' and settings.mode == 0o640
    assert PASSPHRASE not in settings.content_string
    assert json.loads(settings.content_string)['job'] == job


def test_destinations_and_passphrase_are_private(host):
    for path in (DEST, SECURE):
        d = host.file(path)
        assert d.user == 'postgres' and d.mode == 0o700
    secret = host.file(PASSFILE)
    assert secret.user == 'postgres' and secret.mode == 0o600
    assert host.file('/etc/systemd/system/pg-dump-secure.service').content_string.count(PASSPHRASE) == 0


# --- a dump that proves itself --------------------------------------------------------------------

def test_job_service_produces_dump_globals_and_manifest(host):
    cmd = host.run('systemctl start pg-dump-nightly.service')
    assert cmd.rc == 0, journal(host, 'pg-dump-nightly.service')
    rec = record(host, 'pg-dump-nightly')
    assert rec['status'] == 'ok' and set(DIRS) <= set(rec['databases']) and rec['failed'] == []
    for database, encoded in DIRS.items():
        unit = newest(host, '%s/%s' % (DEST, encoded))
        assert host.file(unit).mode == 0o700 and host.file(unit).user == 'postgres'
        assert sorted(host.check_output('ls -1 %s', unit).splitlines()) == sorted(
            ['%s.dump' % encoded, 'globals.sql', 'manifest.json'])
        data = assert_checksums(host, unit)
        assert data['status'] == 'ok' and data['database'] == database
        assert data['server_version_num'] // 10000 == pg_major(host)
        assert 'pg_dump (PostgreSQL) %d.' % pg_major(host) in data['pg_dump_version']
        assert data['duration_seconds'] > 0 and data['started_at'] <= data['finished_at']
        assert 'role postgres' in host.check_output('grep -i "CREATE ROLE postgres" %s/globals.sql', unit).lower()
    no_partials(host, DEST)


def test_compression_is_the_fastest_for_the_version(host):
    data = manifest(host, newest(host, DEST + '/appdb'))
    listing = host.check_output('runuser -u postgres -- pg_restore --list %s/appdb.dump',
                                newest(host, DEST + '/appdb'))
    if pg_major(host) >= 16:
        assert (data['options']['compression'], data['options']['compression_level']) == ('zstd', 3)
        assert 'Compression: zstd' in listing
    else:
        assert (data['options']['compression'], data['options']['compression_level']) == ('gzip', 1)
        assert re.search(r'Compression: (1|gzip)', listing)


def test_manifest_counts_are_exact(host):
    data = manifest(host, newest(host, DEST + '/appdb'))
    tables = [t for t in data['tables'] if t['kind'] == 'table']
    assert len(tables) >= 20
    names = set((t['schema'], t['name']) for t in tables)
    for expected in [('Sales \u00dc', 'Mixed Case Table'), ('public', 'table with spaces'), ('public', '\u00c4rger'),
                     ('public', 'Order"Quote'), ('public', 'measurements_2025'), ('public', 'measurements \u00dc default')]:
        assert expected in names
    assert [t for t in data['tables'] if t['name'] == 'measurements'][0]['kind'] == 'partitioned table'
    # appdb is idle: the snapshot's counts equal the live ones
    assert [t['rows'] for t in tables] == counts(host, 'appdb', tables)
    cache = [t for t in tables if t['name'] == 'cache_sessions'][0]
    assert cache['rows'] == 500 and cache['data_in_dump'] is False
    assert data['rows_total'] == sum(t['rows'] for t in tables if t['data_in_dump'])
    assert data['large_objects'] == {'count': 3, 'in_dump': True}
    views = [t for t in data['tables'] if t['kind'] == 'materialized view']
    assert views and views[0]['rows'] == 5000


# --- restore ------------------------------------------------------------------------------------

def test_restore_into_a_fresh_database_matches_the_manifest(host):
    cmd = pgops(host, 'restore-dump', '--source', DEST + '/appdb', '--target-database', 'appdb_restored',
                '--drop-existing', '--jobs', '2', '--globals')
    assert cmd.rc == 0, cmd.stderr
    result = json.loads(cmd.stdout)
    assert result['status'] == 'ok' and result['matches'] is True and result['globals_restored'] is True
    data = manifest(host, newest(host, DEST + '/appdb'))
    assert result['source'] == newest(host, DEST + '/appdb')
    # independently of the engine's comparison: count every table of the restored database
    tables = [t for t in data['tables'] if t['kind'] == 'table']
    expected = [t['rows'] if t['data_in_dump'] else 0 for t in tables]
    assert counts(host, 'appdb_restored', tables) == expected
    assert expected[[t['name'] for t in tables].index('cache_sessions')] == 0
    assert psql(host, 'SELECT count(*) FROM pg_largeobject_metadata', db='appdb_restored') == '3'
    assert psql(host, 'SELECT last_value FROM invoice_no', db='appdb_restored') == '1041'
    assert psql(host, 'SELECT count(*) FROM customer_totals', db='appdb_restored') == '5000'
    assert psql(host, "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension",
                db='appdb_restored') == 'hstore,pg_trgm,plpgsql'
    assert psql(host, 'SELECT tableowner FROM pg_tables WHERE tablename = \'Mixed Case Table\'',
                db='appdb_restored') == 'app_owner'
    psql(host, 'DROP DATABASE appdb_restored')


def test_restore_of_a_database_with_a_unicode_name(host):
    cmd = pgops(host, 'restore-dump', '--source', DEST + '/' + DIRS['Reports \u00dc'], '--target-database',
                'Reports \u00dc restored', '--drop-existing', '--no-owner', '--no-privileges')
    assert cmd.rc == 0, cmd.stderr
    assert json.loads(cmd.stdout)['matches'] is True
    assert count(host, 'Reports \u00dc restored', 'public', '\u65e5\u672c\u8a9e\u30c6\u30fc\u30d6\u30eb') == 12
    psql(host, 'DROP DATABASE "Reports \u00dc restored"')


# --- the guards of a restore into an existing cluster (issue 12) ----------------------------------------

ROLES = '/var/lib/postgresql/pgops-roles-test'  # postgres may create it


def rolpassword(host, role):
    return psql(host, "SELECT coalesce(rolpassword, '-') FROM pg_authid WHERE rolname = '%s'" % role)


def test_a_restore_never_changes_an_existing_roles_password(host):
    """The dump's globals hold app_owner's password hash of dump time; the password was rotated since.
    Restoring with --globals creates the role that is missing and leaves app_owner as it is now."""
    psql(host, "ALTER ROLE app_owner PASSWORD 'at-dump-time-1'")
    psql(host, "CREATE ROLE dump_only_role LOGIN PASSWORD 'only-in-the-dump-2'")
    dumped_hash = rolpassword(host, 'dump_only_role')
    try:
        cmd = pgops(host, 'dump', '--destination', ROLES, '--database', 'appdb', '--job', 'roles-test')
        assert cmd.rc == 0, cmd.stderr
        unit = newest(host, ROLES + '/appdb')
        assert 'ALTER ROLE app_owner' in host.check_output('grep -i "PASSWORD" %s/globals.sql', unit)
        psql(host, "ALTER ROLE app_owner PASSWORD 'rotated-after-the-dump-3'")
        psql(host, 'DROP ROLE dump_only_role')
        before = rolpassword(host, 'app_owner')
        assert before.startswith('SCRAM-SHA-256$')
        # without --globals nothing of the globals is replayed
        cmd = pgops(host, 'restore-dump', '--source', unit, '--target-database', 'appdb_roles')
        assert cmd.rc == 0, cmd.stderr
        assert json.loads(cmd.stdout)['globals_restored'] is False
        assert psql(host, "SELECT count(*) FROM pg_roles WHERE rolname = 'dump_only_role'") == '0'
        # with --globals: the missing role is created (with its password), the existing one untouched
        cmd = pgops(host, 'restore-dump', '--source', unit, '--target-database', 'appdb_roles', '--drop-existing',
                    '--globals')
        assert cmd.rc == 0, cmd.stderr
        result = json.loads(cmd.stdout)
        assert 'app_owner' in result['globals']['left_unchanged'] and 'dump_only_role' in result['globals']['created']
        assert rolpassword(host, 'app_owner') == before
        assert rolpassword(host, 'dump_only_role') == dumped_hash
    finally:
        psql(host, 'DROP DATABASE IF EXISTS appdb_roles')
        psql(host, 'DROP ROLE IF EXISTS dump_only_role')
        psql(host, 'ALTER ROLE app_owner PASSWORD NULL')
        host.run('rm -rf %s %s/pg-dump-roles-test.json', ROLES, RECORDS)


def test_drop_existing_refuses_the_original_and_a_database_in_use(host):
    before = count(host, 'appdb', 'public', 'orders')
    cmd = pgops(host, 'restore-dump', '--source', DEST + '/appdb', '--target-database', 'appdb', '--drop-existing')
    assert cmd.rc == 1
    assert "database 'appdb' is the database this dump was taken from, on the same cluster" in cmd.stderr
    assert '--force' in cmd.stderr and count(host, 'appdb', 'public', 'orders') == before
    cmd = pgops(host, 'restore-dump', '--source', DEST + '/appdb', '--target-database', 'appdb_busy')
    assert cmd.rc == 0, cmd.stderr
    host.run("runuser -u postgres -- sh -c 'nohup psql -XAtq -d appdb_busy -c \"SELECT pg_sleep(60)\" "
             ">/dev/null 2>&1 &'")
    try:
        wait_for(lambda: psql(host, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'appdb_busy'") != '0',
                 what='a session on appdb_busy')
        cmd = pgops(host, 'restore-dump', '--source', DEST + '/appdb', '--target-database', 'appdb_busy',
                    '--drop-existing')
        assert cmd.rc == 1 and "database 'appdb_busy' has 1 active session(s)" in cmd.stderr, cmd.stderr
        cmd = pgops(host, 'restore-dump', '--source', DEST + '/appdb', '--target-database', 'appdb_busy',
                    '--drop-existing', '--force')
        assert cmd.rc == 0, cmd.stderr
    finally:
        psql(host, 'DROP DATABASE IF EXISTS appdb_busy WITH (FORCE)')


# --- encryption -----------------------------------------------------------------------------------

def test_encrypted_job_decrypts_and_restores(host):
    # sample every process's arguments while the encrypted job runs
    host.run('rm -f /root/ps-secure.log; touch /root/ps-sampling; setsid nohup sh -c '
             '"while [ -e /root/ps-sampling ]; do ps -eo args; sleep 0.02; done; echo SAMPLER-DONE" '
             '>/root/ps-secure.log 2>&1 &')
    cmd = host.run('systemctl start pg-dump-secure.service')
    host.run('rm -f /root/ps-sampling')
    assert cmd.rc == 0, journal(host, 'pg-dump-secure.service')
    unit = newest(host, SECURE + '/appdb')
    data = assert_checksums(host, unit)
    assert data['encrypted'] is True and data['options']['format'] == 'directory'
    paths = [f['path'] for f in data['files']]
    assert all(p.endswith('.gpg') for p in paths) and 'appdb.dir/toc.dat.gpg' in paths and 'globals.sql.gpg' in paths
    assert host.run('grep -rl -- "CREATE ROLE" %s', unit).stdout == ''  # nothing readable without the key
    # a person with the passphrase and plain gpg can read it
    script = ('set -e; export GNUPGHOME=$(mktemp -d); out=$(mktemp -d); cd %s; '
              'for f in $(find . -name "*.gpg"); do mkdir -p "$out/$(dirname $f)"; '
              'gpg --batch --quiet --pinentry-mode loopback --passphrase-file %s -o "$out/${f%%.gpg}" -d "$f"; done; '
              'gpgconf --kill gpg-agent; pg_restore --list "$out/appdb.dir" | grep -c "TABLE DATA"; rm -rf "$out" "$GNUPGHOME"'
              % (unit, PASSFILE))
    decrypted = host.run('bash -c %s', script)
    assert decrypted.rc == 0, decrypted.stderr
    assert int(decrypted.stdout.strip()) == len([t for t in data['tables'] if t['kind'] == 'table' and t['data_in_dump']])
    cmd = pgops(host, 'restore-dump', '--source', unit, '--target-database', 'appdb_secure_restored',
                '--drop-existing', '--passphrase-file', PASSFILE)
    assert cmd.rc == 0, cmd.stderr
    assert json.loads(cmd.stdout)['matches'] is True
    no_partials(host, SECURE)
    psql(host, 'DROP DATABASE appdb_secure_restored')


def test_the_passphrase_never_appears_in_arguments_logs_or_records(host):
    sampled = wait_for(lambda: 'SAMPLER-DONE' in host.file('/root/ps-secure.log').content_string and
                       host.file('/root/ps-secure.log').content_string, 30, what='the process sampler')
    assert 'gpg' in sampled or 'pg_dump' in sampled or 'pgops-backup' in sampled  # the sampler saw the job
    assert PASSPHRASE not in sampled
    assert PASSPHRASE not in host.check_output('ps -eo args')
    assert PASSPHRASE not in journal(host, 'pg-dump-secure.service')
    assert PASSPHRASE not in host.check_output('journalctl --no-pager -n 2000')
    assert PASSPHRASE not in host.check_output('cat %s/*.json', RECORDS)
    assert host.run('grep -rl %s %s %s /etc/systemd/system', PASSPHRASE, SECURE, DEST).stdout == ''


def test_passphrase_never_appears_in_the_ansible_output():
    for step in ('converge', 'check', 'side_effect'):
        log = run_log(step)
        assert 'PLAY RECAP' in log
        assert PASSPHRASE not in log, step


# --- retention ------------------------------------------------------------------------------------

def test_retention_keeps_the_newest_good_dump_when_all_are_too_old(host):
    cmd = host.run('systemctl start pg-dump-nightly.service')
    assert cmd.rc == 0, journal(host, 'pg-dump-nightly.service')
    before = dict((db, units(host, '%s/%s' % (DEST, enc))) for db, enc in DIRS.items())
    assert all(len(names) >= 2 for names in before.values()), before
    time.sleep(2)
    cmd = pgops(host, 'dump', '--job-file', JOB_FILE % 'nightly', '--prune-only', '--max-age', '1s')
    assert cmd.rc == 0, cmd.stderr
    for db, enc in DIRS.items():
        assert units(host, '%s/%s' % (DEST, enc)) == [before[db][-1]], db
        assert_checksums(host, '%s/%s/%s' % (DEST, enc, before[db][-1]))
    assert len(json.loads(cmd.stdout)['pruned']) >= sum(len(v) - 1 for v in before.values())


def test_retention_count_of_the_job(host):
    for _run in range(3):
        assert host.run('systemctl start pg-dump-nightly.service').rc == 0
    assert len(units(host, DEST + '/appdb')) == 3  # retention_count: 3


def audit_dump(host):
    """One run of the audit job (calendar policy: within 5s): the name of the dump it made."""
    before = set(units(host, AUDIT + '/appdb')) if host.file(AUDIT + '/appdb').exists else set()
    cmd = host.run('systemctl start pg-dump-audit.service')
    assert cmd.rc == 0, journal(host, 'pg-dump-audit.service')
    made = sorted(set(units(host, AUDIT + '/appdb')) - before)
    assert len(made) == 1, made
    return made[0]


def test_a_calendar_policy_prunes_what_it_drops_and_never_a_marked_set(host):
    assert json.loads(host.file(JOB_FILE % 'audit').content_string)['retention_policy'] == {'within': '5s'}
    first = audit_dump(host)
    # The operator keeps it for an audit, from the controller.
    # JSON: a reason with a space is one value (key=value pairs would cut it at the space).
    rc, out = run_playbook('keep_backup.yml', '--limit', host.backend.hostname, '-e',
                           json.dumps({'keep_dump_set': '%s/appdb/%s' % (AUDIT, first), 'reason': 'audit OPS-42'}))
    assert rc == 0 and 'kept' in out, out[-3000:]
    mark = json.loads(host.file('%s/appdb/%s.pgops-keep.json' % (AUDIT, first)).content_string)
    assert mark['reason'] == 'audit OPS-42' and mark['user']
    time.sleep(6)
    second = audit_dump(host)
    assert units(host, AUDIT + '/appdb') == [first, second]  # older than 5 s, but marked
    time.sleep(6)
    third = audit_dump(host)
    assert units(host, AUDIT + '/appdb') == [first, third]  # the unmarked one the policy drops is gone
    assert_checksums(host, '%s/appdb/%s' % (AUDIT, first))
    # Released, the policy decides again; the newest good dump always stays.
    rc, out = run_playbook('keep_backup.yml', '--limit', host.backend.hostname, '-e',
                           'keep_dump_set=%s/appdb/%s' % (AUDIT, first), '-e', 'keep_release=true')
    assert rc == 0 and 'released' in out, out[-3000:]
    time.sleep(6)
    cmd = pgops(host, 'dump', '--job-file', JOB_FILE % 'audit', '--prune-only')
    assert cmd.rc == 0, cmd.stderr
    assert units(host, AUDIT + '/appdb') == [third]
    no_partials(host, AUDIT)


def test_a_partial_dump_run_as_root_is_marked_and_keeps_the_last_complete_dump(host):
    """--schema-only (issue 12): marked partial; with a count of 1 the newest complete dump still stays.
    Started as root (sudo, no --run-as): pg_dump runs as postgres and every file belongs to postgres."""
    complete = newest(host, DEST + '/appdb')
    assert manifest(host, complete)['partial'] is False
    cmd = host.run('pgops-backup --json dump --job-file %s --job partial-test --database appdb '
                   '--option=--schema-only --keep-count 1', JOB_FILE % 'nightly')
    assert cmd.rc == 0, cmd.stderr
    rec = json.loads(cmd.stdout)
    assert rec['status'] == 'ok' and rec['partial'] is True, rec
    (dump,) = rec['dumps']
    assert dump['partial_reasons'] == ['--schema-only: no table data (schema only)']
    assert manifest(host, dump['path'])['partial'] is True
    assert units(host, DEST + '/appdb') == sorted([complete.rsplit('/', 1)[1], dump['path'].rsplit('/', 1)[1]])
    assert_checksums(host, complete)
    assert host.check_output('find %s -user root -printf "%%p\\n"', DEST) == ''
    host.run('rm -rf %s', dump['path'])


# --- failures leave no partial output and keep the earlier dumps ------------------------------------

def test_a_full_destination_leaves_no_partial_file_and_the_previous_dump_intact(host):
    mount = host.run('mkdir -p /mnt/pgops-tiny && mount -t tmpfs -o size=2m,mode=0700,uid=$(id -u postgres),'
                     'gid=$(id -g postgres) tmpfs /mnt/pgops-tiny')
    if mount.rc != 0:
        pytest.skip('this container cannot mount a tmpfs: %s' % mount.stderr)
    try:
        psql(host, 'DROP DATABASE IF EXISTS tinydb')
        psql(host, 'CREATE DATABASE tinydb')
        psql(host, 'CREATE TABLE small AS SELECT generate_series(1, 100) AS id', db='tinydb')
        first = pgops(host, 'dump', '--job', 'tiny', '--destination', '/mnt/pgops-tiny', '--database', 'tinydb')
        assert first.rc == 0, first.stderr
        (good,) = units(host, '/mnt/pgops-tiny/tinydb')
        # about 3 MB that no codec can shrink: the next dump cannot fit in 2 MB
        psql(host, "CREATE TABLE filler AS SELECT decode(string_agg(md5(random()::text || g), ''), 'hex') AS b "
                   'FROM generate_series(1, 200000) g', db='tinydb')
        second = pgops(host, 'dump', '--job', 'tiny', '--destination', '/mnt/pgops-tiny', '--database', 'tinydb')
        assert second.rc == 1
        rec = json.loads(second.stdout)
        assert rec['status'] == 'failed' and 'No space left on device' in rec['error']
        assert units(host, '/mnt/pgops-tiny/tinydb') == [good]
        assert_checksums(host, '/mnt/pgops-tiny/tinydb/' + good)
        no_partials(host, '/mnt/pgops-tiny')
        assert host.run('ls -A /mnt/pgops-tiny').stdout.split() == ['.pgops-dump.lock', 'tinydb']
    finally:
        host.run('umount /mnt/pgops-tiny')
        psql(host, 'DROP DATABASE IF EXISTS tinydb')


def _lock_holders(host):
    return psql(host, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                      "WHERE c.relname = 'lock_target' AND l.mode = 'AccessExclusiveLock' AND l.granted", db='appdb')


def _pg_dump_of_appdb(host):
    for line in host.check_output('ps -eo pid,args').splitlines():
        pid, _sep, args = line.strip().partition(' ')
        if 'pg_dump ' in args and "dbname='appdb'" in args and '--file=' in args:
            return pid
    return None


def file_digests(host, path):
    """Every file under path with its sha256: what the dump is, not when its directory was touched."""
    return host.check_output("cd %s && find . -type f -print0 | sort -z | xargs -0 -r sha256sum", path)


def test_a_killed_pg_dump_leaves_no_partial_file_and_the_previous_dump_intact(host):
    before = newest(host, DEST + '/appdb')
    contents = file_digests(host, before)
    reports_before = units(host, DEST + '/' + DIRS['Reports \u00dc'])
    host.run('rm -f %s/notify.json', RECORDS)
    # pg_dump of appdb will wait for this lock until it is killed
    host.run('setsid nohup runuser -u postgres -- psql -d appdb -c '
             '"BEGIN; LOCK TABLE lock_target IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300)" >/dev/null 2>&1 &')
    try:
        wait_for(lambda: _lock_holders(host) == '1', 30, what='the lock')
        assert host.run('systemctl start --no-block pg-dump-nightly.service').rc == 0
        pid = wait_for(lambda: _pg_dump_of_appdb(host), 90, what='pg_dump of appdb')
        assert host.run('find %s/appdb -maxdepth 1 -name ".partial-*"', DEST).stdout.strip() != ''
        assert host.run('kill -9 %s', pid).rc == 0
        wait_for(lambda: host.check_output('systemctl is-active pg-dump-nightly.service || true') in ('failed', 'inactive'),
                 90, what='the job to end')
    finally:
        psql(host, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                   "WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()")
    assert host.check_output('systemctl show -P Result pg-dump-nightly.service') == 'exit-code'
    rec = record(host, 'pg-dump-nightly')
    assert rec['status'] == 'failed' and [f['database'] for f in rec['failed']] == ['appdb']
    assert 'rc=-9' in rec['error']
    assert 'postgres' in rec['databases'] and 'Reports \u00dc' in rec['databases']  # the others were dumped
    assert len(units(host, DEST + '/' + DIRS['Reports \u00dc'])) >= len(reports_before)
    assert newest(host, DEST + '/appdb') == before
    assert file_digests(host, before) == contents
    assert_checksums(host, before)
    no_partials(host, DEST)
    # the shared OnFailure hook ran for this unit
    notify = wait_for(lambda: host.file(RECORDS + '/notify.json').exists, 30, what='the notify record')
    assert notify and record(host, 'notify')['unit'] == 'pg-dump-nightly.service'
    host.run('systemctl reset-failed pg-dump-nightly.service')


# --- the modules and check mode ---------------------------------------------------------------------

def test_modules_dumped_and_restored_through_ansible(host):
    data = json.loads(host.file('/root/pg_dump-side-effect.json').content_string)
    assert data['restore']['matches'] is True
    assert data['dump']['encrypted'] is True and data['dump']['dump_path'].endswith('appdb.sql.gpg')
    assert data['restore']['tables_compared'] == data['dump']['table_count']


def test_zstd_is_refused_before_postgresql_16(host):
    answer = json.loads(host.file('/root/pg_dump-zstd.json').content_string)
    if pg_major(host) >= 16:
        assert answer['msg'] == ''
    else:
        assert 'zstd compression needs pg_dump 16 or later; this host has pg_dump %d' % pg_major(host) in answer['msg']


def test_check_mode_on_a_configured_host_changes_nothing():
    hosts = recap(run_log('check'))
    assert hosts, 'no PLAY RECAP in the check-mode run'
    assert all(counts['changed'] == 0 and counts['failed'] == 0 for counts in hosts.values()), hosts
