"""Point-in-time recovery drills with real data, run through the playbooks as an operator runs them.

The tests run in order and build on each other: a writer commits timestamped rows continuously,
something destroys data, and playbooks/pitr.yml brings the database back to a time, a restore
point and a transaction id. Then the refusals, a restore elsewhere and a standby rebuild.
Measured RPO and RTO go to the terminal and to $PGOPS_LOG_DIR/pitr-drill-report.txt.
"""

import json
import os
import re
import subprocess
import time

import pytest
from testhosts import molecule_hosts, psql

testinfra_hosts = molecule_hosts()
HOST = testinfra_hosts[0].split('://', 1)[1]
DATA = '/var/lib/postgresql/17/main'
ACKS = '/var/lib/postgresql/drill-acks.log'
RECORD = '/var/lib/pgops-backup/records/pitr-restore-main.json'
LOG_DIR = os.environ.get('PGOPS_LOG_DIR', '/tmp')
STATE = {'report': []}
# The writer: one transaction per row; after each commit it logs id | insert time | acknowledgement time.
WRITER = (
    "while true; do "
    "out=$(psql -XAtq -v ON_ERROR_STOP=1 -c \"INSERT INTO drill(phase) VALUES ('%s') "
    "RETURNING phase, id, extract(epoch FROM ts)\" 2>/dev/null) && echo \"$out|$(date +%%s.%%N)\" >> " + ACKS + "; "
    "sleep 0.1; done")


# --- helpers ---------------------------------------------------------------------------------------

def sh(host, command, *args):
    result = host.run(command, *args)
    assert result.rc == 0, '%s: %s %s' % (command, result.stdout, result.stderr)
    return result.stdout.strip()


def now(host):
    return float(sh(host, 'date +%s.%N'))


def utc(epoch):
    return time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(epoch)) + ('%.6f' % (epoch % 1))[1:] + '+00'


def report(line):
    STATE['report'].append(line)
    with open(os.path.join(LOG_DIR, 'pitr-drill-report.txt'), 'a') as handle:
        handle.write(line + '\n')


def start_writer(host, phase):
    sh(host, 'systemd-run --unit=pitr-writer-%s --uid=postgres --setenv=PGDATABASE=postgres /bin/bash -c %s',
       phase, WRITER % phase)
    time.sleep(2)


def stop_writer(host, phase):
    sh(host, 'systemctl stop pitr-writer-%s' % phase)


def podman_psql(sql):
    return subprocess.run(['podman', 'exec', HOST, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-c', sql],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)


def writable_and_restored():
    probe = podman_psql("INSERT INTO rto_probe SELECT now() WHERE to_regclass('victim') IS NOT NULL "
                        "AND NOT pg_is_in_recovery() RETURNING 1")
    return probe.returncode == 0 and probe.stdout.strip() == '1'


def playbook(name, step, extra, probe=None):
    """Run a collection playbook against the test host; with `probe`, also measure when it first holds."""
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'], 'pgops.backup.%s' % name,
            '-e', json.dumps(dict(extra, pgops_target=HOST))]
    out_path = os.path.join(LOG_DIR, 'pitr-verify-%s.out' % step)
    started = time.time()
    first = None
    with open(out_path, 'w') as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if probe is not None and first is None and probe():
                first = time.time()
            time.sleep(0.3)
    with open(out_path) as handle:
        output = handle.read()
    return proc.returncode, output, time.time() - started, (first - started) if first else None


def flat(output):
    """Playbook output as one line: colours off, YAML's folding and quote doubling undone, so a message
    can be looked for as the engine wrote it."""
    plain = re.sub(r'\x1b\[[0-9;]*m', '', output).replace("''", "'")
    return ' '.join(plain.split())


def last_record(host):
    return json.loads(host.file(RECORD).content_string)


def check_rows(host, phase, before, after):
    """Every row of the phase acknowledged before `before` is there; no row inserted after `after` is."""
    rows = []
    for line in host.file(ACKS).content_string.splitlines():
        fields = line.split('|')
        if fields[0] == phase:
            rows.append((int(fields[1]), float(fields[2]), float(fields[3])))
    present = set(int(i) for i in psql(host, "SELECT id FROM drill WHERE phase = '%s'" % phase).split())
    committed_before = [r[0] for r in rows if r[2] <= before]
    missing = [i for i in committed_before if i not in present]
    late = int(psql(host, "SELECT count(*) FROM drill WHERE ts > '%s'" % utc(after)))
    assert committed_before, '%s: the writer acknowledged nothing before the target' % phase
    assert missing == [], '%s: rows committed before the target are missing: %s' % (phase, missing[:10])
    assert late == 0, '%s: %d rows inserted after the target are present' % (phase, late)
    assert any(r[1] > after for r in rows), '%s: the writer wrote nothing after the target' % phase
    newest = float(psql(host, 'SELECT extract(epoch FROM max(ts)) FROM drill'))
    return len(committed_before), newest


def victim_is_back(host):
    assert psql(host, "SELECT count(*), md5(string_agg(id::text || payload, ',' ORDER BY id)) FROM victim") == \
        STATE['victim']


# --- setup -------------------------------------------------------------------------------------------

def test_00_setup_data_and_quiet_timers(host):
    open(os.path.join(LOG_DIR, 'pitr-drill-report.txt'), 'w').close()
    # Scheduled backups would race the drills' own backups for the stanza lock.
    sh(host, 'systemctl stop pgbackrest-main-full.timer pgbackrest-main-diff.timer pgbackrest-main-incr.timer '
             'pgbackrest-main-verify.timer')
    psql(host, 'CREATE TABLE drill (id bigserial PRIMARY KEY, ts timestamptz NOT NULL DEFAULT clock_timestamp(), '
               'phase text)')
    psql(host, 'CREATE TABLE rto_probe (at timestamptz)')
    psql(host, "CREATE TABLE victim AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 5000) g")
    STATE['victim'] = psql(host, "SELECT count(*), md5(string_agg(id::text || payload, ',' ORDER BY id)) FROM victim")
    sh(host, 'install -o postgres -g postgres -m 0644 /dev/null %s' % ACKS)


# --- drill 1: a time -------------------------------------------------------------------------------

def test_10_drill_to_a_time(host):
    start_writer(host, 'time')
    target = now(host)
    time.sleep(1)
    psql(host, 'DROP TABLE victim')
    time.sleep(3)  # the application keeps writing after the incident
    stop_writer(host, 'time')
    extra = {'pitr_time': utc(target), 'pitr_confirm': HOST, 'pitr_reason': 'molecule drill: time'}
    rc, out, seconds, rto = playbook('pitr', 'time', extra, probe=writable_and_restored)
    assert rc == 0, out[-4000:]
    assert 'backup set: ' in out and 'steps:' in out, 'the plan was not shown'
    record = last_record(host)
    assert record['status'] == 'ok' and record['verification']['verified'], record
    victim_is_back(host)
    count, newest = check_rows(host, 'time', target, target)
    STATE['aside'] = record['moved_aside_to']
    STATE['time_target'] = target
    recovered = record['recovered_to']
    report('drill 1 (time %s): %d rows committed before the target all present, none after; table back' %
           (utc(target), count))
    report('  RPO: 0 committed transactions lost; newest row recovered %.3f s before the target '
           '(last replayed commit %s)' % (target - newest, recovered))
    report('  RTO: %.1f s from running the playbook to a writable, restored database (playbook total %.1f s, '
           'phases %s)' % (rto or -1, seconds, json.dumps(record['phases'])))
    assert rto is not None


def test_11_moved_aside_directory_is_intact(host):
    aside = STATE['aside']
    assert aside and aside.startswith(DATA + '.pitr-')
    assert host.file(aside).is_directory and host.file(aside).user == 'postgres'
    control = sh(host, 'runuser -u postgres -- /usr/lib/postgresql/17/bin/pg_controldata %s' % aside)
    assert 'Database cluster state:               shut down' in control
    # Start a copy of it (never the directory itself) and look at the data: the state at the stop.
    copy = '/var/lib/postgresql/aside-copy'
    sh(host, 'cp -a %s %s' % (aside, copy))
    sh(host, "printf \"port = 5499\\nlisten_addresses = ''\\nunix_socket_directories = '/tmp'\\narchive_mode = off\\n\" "
             "| runuser -u postgres -- tee %s/postgresql.conf" % copy)
    sh(host, "echo 'local all all peer' | runuser -u postgres -- tee %s/pg_hba.conf" % copy)
    try:
        sh(host, 'runuser -u postgres -- /usr/lib/postgresql/17/bin/pg_ctl start -w -D %s -l /tmp/aside-copy.log '
                 '-o "-c archive_mode=off"' % copy)
        query = sh(host, "runuser -u postgres -- psql -h /tmp -p 5499 -XAtq -c \"SELECT to_regclass('victim') IS NULL, "
                         "count(*) FILTER (WHERE ts > '%s') FROM drill\"" % utc(STATE['time_target'] + 1.5))
        dropped, later_rows = query.split('|')
        assert dropped == 't' and int(later_rows) > 0, query
    finally:
        host.run('runuser -u postgres -- /usr/lib/postgresql/17/bin/pg_ctl stop -D %s -m fast' % copy)
        host.run('rm -rf %s' % copy)


# --- drill 2: a restore point ----------------------------------------------------------------------

def test_20_drill_to_a_restore_point(host):
    start_writer(host, 'name')
    rc, out, _s, _r = playbook('restore_point', 'restore-point', {'name': 'before_migration'})
    assert rc == 0, out[-4000:]
    again, out2, _s, _r = playbook('restore_point', 'restore-point-again', {'name': 'before_migration'})
    assert again == 0 and 'already existed' in out2, out2[-2000:]
    point = json.loads(host.file('/var/lib/pgops-backup/restore-points/before_migration.json').content_string)
    assert point['archived']
    created = point['created_us'] / 1e6
    time.sleep(1)
    psql(host, 'DROP TABLE victim')  # the "migration" goes wrong
    time.sleep(2)
    stop_writer(host, 'name')
    rc, out, seconds, rto = playbook('pitr', 'name', {'pitr_name': 'before_migration', 'pitr_confirm': HOST},
                                     probe=writable_and_restored)
    assert rc == 0, out[-4000:]
    record = last_record(host)
    assert record['verification']['verified'] and record['target']['type'] == 'name'
    assert any('restore point "before_migration"' in e for e in record['verification']['evidence'])
    victim_is_back(host)
    count, newest = check_rows(host, 'name', created, created + 0.05)
    report('drill 2 (restore point before_migration at %s): %d rows committed before it present, none after; '
           'RTO %.1f s' % (point['created_at'], count, rto or -1))


# --- drill 3: a transaction id ---------------------------------------------------------------------

def test_30_drill_to_just_before_a_transaction(host):
    start_writer(host, 'xid')
    before = now(host)
    xid = psql(host, 'BEGIN; DROP TABLE victim; SELECT txid_current(); COMMIT;')
    after = now(host)
    time.sleep(2)
    stop_writer(host, 'xid')
    rc, out, seconds, rto = playbook('pitr', 'xid', {'pitr_xid': xid, 'pitr_exclusive': True, 'pitr_confirm': HOST},
                                     probe=writable_and_restored)
    assert rc == 0, out[-4000:]
    record = last_record(host)
    assert record['verification']['evidence'][0] == 'stopped before the commit of transaction %s' % xid
    victim_is_back(host)
    count, newest = check_rows(host, 'xid', before, after)
    report('drill 3 (just before transaction %s, the DROP): %d rows committed before it present, none after; '
           'RTO %.1f s' % (xid, count, rto or -1))


# --- refusals -------------------------------------------------------------------------------------

def cluster_fingerprint(host):
    return (psql(host, 'SELECT pg_postmaster_start_time()'), sh(host, 'ls -1a /var/lib/postgresql/17'),
            sh(host, 'ls -1a %s' % DATA), sh(host, 'pg_lsclusters --no-header'))


@pytest.mark.parametrize('case', ['before-oldest-backup', 'after-newest-wal'])
def test_40_targets_outside_the_window_fail_in_preflight(host, case):
    info = json.loads(sh(host, 'runuser -u postgres -- pgbackrest --stanza=main --output=json info'))[0]
    if case == 'before-oldest-backup':
        target, words = min(b['timestamp']['start'] for b in info['backup']) - 60, 'before the end of the oldest'
    else:
        target, words = now(host) + 3600, 'is in the future'
    before = cluster_fingerprint(host)
    rc, out, _s, _r = playbook('pitr', 'refused-%s' % case, {'pitr_time': utc(target), 'pitr_confirm': HOST})
    assert rc != 0
    assert words in out and 'recoverable window: from' in out, out[-3000:]
    assert 'TASK [Restore to the target' not in out
    assert cluster_fingerprint(host) == before
    assert psql(host, 'SELECT NOT pg_is_in_recovery()') == 't'
    refused = sh(host, 'ls /var/lib/pgops-backup/records/pitr-audit')
    assert '-refused.json' in refused


# --- guards: the wrong host, two recoveries at once, a run killed in the middle -------------------

STANDBY_DATA = '/var/lib/postgresql/17/standby'
LOCK = '/run/pgops-backup/locks/cluster-17-main.lock'
AUDIT = '/var/lib/pgops-backup/records/pitr-audit'
# Waits (in the test host, polling every 20 ms) until an in-place run has moved the data directory aside,
# then kills that run and everything it started with SIGKILL, as a crash or an impatient operator would.
KILLER = r"""
import json, glob, os, signal, sys, time
def tree(pid):
    kids = []
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            fields = open(stat).read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids += tree(int(stat.split('/')[2]))
    return kids + [pid]
deadline = time.time() + 300
while time.time() < deadline:
    for path in glob.glob('%s/*-running.json' % sys.argv[1]):
        try:
            record = json.load(open(path))
        except ValueError:
            continue
        if record.get('moved_aside_to'):
            pids = tree(record['pid'])
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            open('/tmp/pitr-killer.json', 'w').write(json.dumps({'pids': pids, 'record': record}))
            sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
"""
# Holds an in-place run still (SIGSTOP) as soon as it holds the cluster's lock, before it changes anything.
FREEZER = r"""
import json, os, signal, sys, time
deadline = time.time() + 300
while time.time() < deadline:
    try:
        holder = json.load(open(sys.argv[1]))
    except (OSError, ValueError):
        holder = None
    if holder and holder.get('pid') and not holder.get('released'):
        os.kill(holder['pid'], signal.SIGSTOP)
        open('/tmp/pitr-first.pid', 'w').write('%d' % holder['pid'])
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
"""


def archive_everything(host):
    """pgbackrest check switches WAL and waits until it is archived: a target latest then loses nothing."""
    sh(host, 'runuser -u postgres -- pgbackrest --stanza=main check')


def start_time(host, port=5432):
    return sh(host, "runuser -u postgres -- psql -p %d -XAtq -c 'SELECT pg_postmaster_start_time()'" % port)


def test_42_in_place_pitr_is_refused_on_a_running_standby(host):
    # A streaming standby of the primary on the same host: same system identifier, port 5441.
    sh(host, 'pg_createcluster 17 standby --port 5441 >/dev/null && rm -rf %s' % STANDBY_DATA)
    try:
        sh(host, 'runuser -u postgres -- pg_basebackup -p 5432 -D %s -R -X stream -c fast' % STANDBY_DATA)
        sh(host, 'pg_ctlcluster 17 standby start')
        assert sh(host, "runuser -u postgres -- psql -p 5441 -XAtq -c 'SELECT pg_is_in_recovery()'") == 't'
        deadline = time.time() + 30
        while psql(host, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") != '1':
            assert time.time() < deadline, 'the standby does not stream'
            time.sleep(0.5)
        before = (start_time(host), start_time(host, 5441), sh(host, 'ls -1a /var/lib/postgresql/17'),
                  psql(host, 'SELECT timeline_id FROM pg_control_checkpoint()'))
        # The reported case: pitr.yml naming the running standby, target latest, confirmed.
        rc, out, _s, _r = playbook('pitr', 'refused-standby', {'pitr_pg_cluster': 'standby', 'pitr_latest': True,
                                                               'pitr_confirm': HOST})
        out = flat(out)
        assert rc != 0
        assert ('refusing an in-place point-in-time recovery of 17/standby: it is running as a standby '
                '(pg_is_in_recovery() is true)') in out, out[-3000:]
        assert 'two writable primaries' in out and 'allow_standby=true' in out and 'restore elsewhere' in out
        assert 'TASK [Restore to the target' not in out
        # Nothing moved: both servers still run as they did, the standby still streams.
        after = (start_time(host), start_time(host, 5441), sh(host, 'ls -1a /var/lib/postgresql/17'),
                 psql(host, 'SELECT timeline_id FROM pg_control_checkpoint()'))
        assert after == before
        assert sh(host, "runuser -u postgres -- psql -p 5441 -XAtq -c 'SELECT pg_is_in_recovery()'") == 't'
        report('in-place PITR of a running streaming standby (17/standby): refused in preflight, both servers '
               'untouched')
    finally:
        host.run('pg_dropcluster --stop 17 standby')


def test_44_two_recoveries_at_once_the_second_is_refused_naming_the_first(host):
    psql(host, 'CREATE TABLE lock_marker AS SELECT 44 AS answer')
    archive_everything(host)
    # The first recovery: held still (SIGSTOP) as soon as it holds the cluster's lock, before it changes anything.
    sh(host, 'rm -f /tmp/pitr-first.pid')
    sh(host, "printf '%%s' %s > /tmp/pitr-freeze.py", FREEZER)
    sh(host, 'systemd-run --unit=pitr-freeze python3 /tmp/pitr-freeze.py %s' % LOCK)
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'], 'pgops.backup.pitr', '-e',
            json.dumps({'pitr_latest': True, 'pitr_confirm': HOST, 'pgops_target': HOST, 'pitr_new_backup': False,
                        'pitr_reason': 'molecule: the first of two'})]
    with open(os.path.join(LOG_DIR, 'pitr-verify-lock-first.out'), 'w') as first_out:
        first = subprocess.Popen(argv, stdout=first_out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 120
            while not host.file('/tmp/pitr-first.pid').exists:
                assert first.poll() is None and time.time() < deadline, 'the first recovery never took the lock'
                time.sleep(0.2)
            pid = sh(host, 'cat /tmp/pitr-first.pid')
            holder = json.loads(host.file(LOCK).content_string)
            # The second, started while the first holds the cluster: refused, naming the first.
            rc, out, _s, _r = playbook('pitr', 'lock-second', {'pitr_latest': True, 'pitr_confirm': HOST})
            out = flat(out)
            assert rc != 0
            assert 'a recovery of this cluster is running now: in-place PITR of stanza main (pid %s' % pid in out
            assert ('cluster 17/main is busy: in-place PITR of stanza main (pid %s, started %s by %s) holds its lock; '
                    'refusing to start in-place PITR of stanza main' % (pid, holder['started_at'], holder['user'])) \
                in out, out[-3000:]
            assert 'nothing was changed' in out
        finally:
            host.run('kill -CONT $(cat /tmp/pitr-first.pid)')
        assert first.wait(timeout=600) == 0, open(first_out.name).read()[-3000:]
    record = last_record(host)
    assert record['status'] == 'ok' and record['reason'] == 'molecule: the first of two'
    assert psql(host, 'SELECT answer FROM lock_marker') == '44'
    report('two recoveries at once: the second refused by the cluster lock, naming the first (pid %s); the first '
           'finished' % pid)


def test_46_a_pitr_killed_in_the_middle_is_reported_by_the_next_run_which_repairs(host):
    psql(host, 'CREATE TABLE kill_marker AS SELECT 46 AS answer')
    archive_everything(host)
    sh(host, 'rm -f /tmp/pitr-killer.json')
    sh(host, "printf '%%s' %s > /tmp/pitr-killer.py", KILLER)
    sh(host, 'systemd-run --unit=pitr-killer python3 /tmp/pitr-killer.py %s' % AUDIT)
    rc, out, _s, _r = playbook('pitr', 'killed', {'pitr_latest': True, 'pitr_confirm': HOST,
                                                  'pitr_reason': 'molecule: killed'})
    assert rc != 0, 'the run was not killed'
    killed = json.loads(host.file('/tmp/pitr-killer.json').content_string)
    aside = killed['record']['moved_aside_to']
    # What kill -9 leaves: the cluster down, the old data directory aside, and the record of the run.
    assert host.file(aside).is_directory
    assert 'Database cluster state:               shut down' in sh(
        host, 'runuser -u postgres -- /usr/lib/postgresql/17/bin/pg_controldata %s' % aside)
    running = sh(host, 'ls %s' % AUDIT).split()
    assert [n for n in running if n.endswith('-running.json')], running
    # The next plan says where the data directory is (no confirmation: it stops after the plan).
    rc, out, _s, _r = playbook('pitr', 'after-kill-plan', {'pitr_latest': True})
    out = flat(out)
    assert rc != 0 and 'Read the plan above' in out
    assert 'did not finish' in out and 'the data directory as it was before that run is at %s' % aside in out, \
        out[-4000:]
    # A normal run repairs: it reports the stale lock and the interrupted run, restores, and keeps both directories.
    rc, out, seconds, _r = playbook('pitr', 'after-kill-repair', {'pitr_latest': True, 'pitr_confirm': HOST})
    assert rc == 0, out[-4000:]
    out = flat(out)
    assert 'a stale lock of cluster 17/main was found and cleared' in out
    record = last_record(host)
    assert record['status'] == 'ok' and record['interrupted_runs'][0]['moved_aside_to'] == aside
    assert host.file(aside).is_directory
    if record['moved_aside_to']:  # what the killed run left in the data directory, kept too
        assert host.file(record['moved_aside_to']).is_directory
    assert psql(host, 'SELECT answer FROM kill_marker') == '46' and psql(host, 'SELECT NOT pg_is_in_recovery()') == 't'
    names = sh(host, 'ls %s' % AUDIT).split()
    assert not [n for n in names if n.endswith('-running.json')] and [n for n in names if n.endswith('-interrupted.json')]
    report('kill -9 during an in-place PITR (stage: %s): the next plan named the old data directory %s; a normal run '
           'repaired it in %.1f s' % (killed['record']['stage'], aside, seconds))


# --- restore elsewhere ------------------------------------------------------------------------------

def archive_listing(host):
    out = sh(host, 'runuser -u postgres -- pgbackrest --stanza=main --output=json repo-ls --recurse archive/main')
    return dict((name, meta.get('size')) for name, meta in json.loads(out).items() if meta.get('type') == 'file')


def test_50_restore_elsewhere_never_touches_the_source_archive(host):
    source_tli = int(psql(host, 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), 16)
    before = archive_listing(host)
    extra = {'pitr_latest': True, 'pitr_destination': 'elsewhere', 'pitr_scratch_name': 'forensics',
             'pitr_scratch_state': 'running'}  # kept running to be inspected (stopped by default)
    rc, out, seconds, _r = playbook('pitr', 'elsewhere', extra)
    assert rc == 0, out[-4000:]
    marker = json.loads(host.file('/var/lib/postgresql/pgops-scratch/forensics.pgops-scratch.json').content_string)
    port = marker['port']
    assert port != 5432

    def scratch(sql):
        return sh(host, 'runuser -u postgres -- psql -h /var/run/postgresql -p %s -XAtq -c %s', str(port), sql)
    assert scratch('SHOW archive_mode') == 'off'
    assert scratch('SHOW port') == str(port)
    assert scratch('SELECT pg_is_in_recovery()') == 'f'
    assert scratch("SELECT to_regclass('victim') IS NOT NULL") == 't'
    scratch_tli = int(scratch('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), 16)
    assert scratch_tli > source_tli
    # Make the scratch instance produce WAL and switch segments: nothing may reach the repository.
    scratch("CREATE TABLE scratch_only AS SELECT generate_series(1, 20000) AS n")
    scratch('SELECT pg_switch_wal()')
    scratch('CHECKPOINT')
    time.sleep(3)
    after = archive_listing(host)
    assert all(after.get(name) == size for name, size in before.items()), 'archived files changed or vanished'
    new = sorted(set(after) - set(before))
    foreign = [n for n in new if not n.split('/')[-1].startswith('%08X' % source_tli)]
    assert foreign == [], 'files from the scratch instance reached the archive: %s' % foreign
    assert not any(n.endswith('%08X.history' % scratch_tli) for n in after)
    report('restore elsewhere: scratch instance on port %d (archive_mode off, timeline %d) in %.1f s; '
           'source archive unchanged (%d files before, %d new from the source timeline only)'
           % (port, scratch_tli, seconds, len(before), len(new)))
    # Removal through the host command.
    sh(host, 'pgops-backup pitr scratch-remove forensics --stanza main')
    assert not host.file('/var/lib/postgresql/pgops-scratch/forensics').exists


# --- standby rebuild -------------------------------------------------------------------------------

def test_60_standby_rebuild_streams(host):
    sh(host, 'pg_createcluster 17 replica --port 5440 >/dev/null && pg_ctlcluster 17 replica start')
    try:
        extra = {'standby_pg_cluster': 'replica', 'standby_confirm': HOST}
        refused, out, _s, _r = playbook('standby_rebuild', 'standby-refused', extra)
        assert refused != 0 and 'as a PRIMARY' in out
        sh(host, 'pg_ctlcluster 17 replica stop')
        # Stopped, it is still a former primary (pg_control "shut down"): its unarchived WAL would be lost.
        refused, out, _s, _r = playbook('standby_rebuild', 'standby-refused-stopped', extra)
        out = flat(out)
        assert refused != 0 and 'was last a primary: pg_control says "Database cluster state: shut down"' in out
        assert 'standby_force=true' in out
        rc, out, seconds, _r = playbook('standby_rebuild', 'standby', {
            'standby_pg_cluster': 'replica', 'standby_confirm': HOST, 'standby_force': True,
            'standby_primary_conninfo': 'host=/var/run/postgresql port=5432 user=postgres application_name=replica'})
        assert rc == 0, out[-4000:]
        assert 'is a standby (streaming' in out or 'is a standby (replaying' in out
        deadline = time.time() + 30
        while time.time() < deadline:
            state = psql(host, "SELECT state FROM pg_stat_replication WHERE application_name = 'replica'")
            if state == 'streaming':
                break
            time.sleep(1)
        assert state == 'streaming'
        assert sh(host, "runuser -u postgres -- psql -p 5440 -XAtq -c 'SELECT pg_is_in_recovery()'") == 't'
        report('standby rebuild (--type=standby --delta): streaming from the primary after %.1f s' % seconds)
    finally:
        host.run('pg_dropcluster --stop 17 replica')


def test_99_report(capsys):
    with capsys.disabled():
        print('\n=== PITR drill report ===')
        for line in STATE['report']:
            print(line)
    assert len(STATE['report']) >= 6
