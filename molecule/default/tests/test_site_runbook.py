"""After `playbooks/site.yml` with every layer on: the checks an operator runs on day one.

1. The second run changed nothing.
2. The nightly pg_dump timer is scheduled; its service, started now, writes a good dump record.
3. The weekly restore drill timer is scheduled; its service, started now, restores the newest
   pgBackRest backup into a scratch copy, checks it (heartbeat included) and writes a passing report.
4. The metrics timer runs every minute; the textfile node_exporter reads has the backup age, the
   dump and the drill, and node_exporter serves it.
5. A play with `module_defaults: {group/pgops.backup.pgbackrest: {stanza: main}}` backed up and read
   the stanza without naming it (side_effect.yml).

The tests run top to bottom on each host; the service runs are the real ones (what the timers
start), so each step takes seconds, not a wait for a calendar.
"""

import json
import re
import time

from testhosts import molecule_hosts, recap, run_log

testinfra_hosts = molecule_hosts()

RECORDS = '/var/lib/pgops-backup/records'
PROM = '/var/lib/prometheus/node-exporter/pgops_backup.prom'
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def record(host, name):
    return json.loads(host.file('%s/%s.json' % (RECORDS, name)).content_string)


def journal(host, unit):
    return host.check_output('journalctl -u %s -n 30 --no-pager -o cat', unit)


def start(host, unit):
    """What the timer does at its calendar time: start the service once and wait for it (oneshot)."""
    started = int(time.time())
    cmd = host.run('systemctl start %s', unit)
    assert cmd.rc == 0, journal(host, unit)
    return started


def timer_calendar(host, timer):
    unit = host.service(timer)
    assert unit.is_enabled and unit.is_running, '%s is not enabled and running' % timer
    return host.check_output('systemctl show -P TimersCalendar %s', timer)


def normalized(host, calendar):
    return host.check_output('systemd-analyze calendar %s | sed -n "s/^  Normalized form: //p"', calendar)


def metric(text, name, **labels):
    found = []
    for line in text.splitlines():
        match = SAMPLE_RE.match(line)
        if not match or line.startswith('#') or match.group(1) != name:
            continue
        have = dict(LABEL_RE.findall(match.group(2) or ''))
        if all(have.get(k) == v for k, v in labels.items()):
            found.append(float(match.group(3)))
    assert len(found) == 1, '%s %s: %d samples\n%s' % (name, labels, len(found), text)
    return found[0]


# --- 1. the second run of site.yml ----------------------------------------------------------------

def test_second_run_of_site_changed_nothing():
    hosts = recap(run_log('idempotence'))
    assert len(hosts) == len(testinfra_hosts), hosts
    assert all(counts['changed'] == 0 and counts['failed'] == 0 for counts in hosts.values()), hosts
    converge = run_log('converge')
    for role in ('pgbackrest', 'pg_dump', 'restore_test', 'monitoring'):
        assert 'TASK [pgops.backup.%s : ' % role in converge, 'site.yml did not run the %s role' % role


# --- 2. the nightly dump ----------------------------------------------------------------------------

def test_dump_timer_is_nightly(host):
    calendar = timer_calendar(host, 'pg-dump-nightly.timer')
    assert 'OnCalendar=%s' % normalized(host, '*-*-* 02:15:00') in calendar


def test_dump_service_writes_a_good_record(host):
    started = start(host, 'pg-dump-nightly.service')
    rec = record(host, 'pg-dump-nightly')
    assert rec['status'] == 'ok' and rec['failed'] == [], rec
    assert 'postgres' in rec['databases'] and rec['finished_epoch'] >= started - 5
    assert rec['size_bytes'] > 0


# --- 3. the weekly restore drill ---------------------------------------------------------------------

def test_drill_timer_is_weekly_and_the_heartbeat_beats(host):
    calendar = timer_calendar(host, 'pgops-restore-test-pgbackrest.timer')
    assert 'OnCalendar=%s' % normalized(host, 'Sun *-*-* 05:00:00') in calendar
    assert 'OnCalendar=*-*-* *:*:00' in timer_calendar(host, 'pgops-heartbeat.timer')


def test_drill_service_restores_the_newest_backup_and_passes(host):
    started = start(host, 'pgops-restore-test-pgbackrest.service')
    report = record(host, 'restore_test-pgbackrest')
    assert report['status'] == 'ok' and report['finished_epoch'] >= started - 5, report.get('error')
    checks = dict((c['name'], c['status']) for c in report['checks'])
    for name in ('restore', 'recovery', 'isolation', 'heartbeat'):
        assert checks.get(name) == 'pass', report['checks']
    assert (report.get('scratch') or {}).get('state') == 'removed', report.get('scratch')
    assert ': PASSED' in journal(host, 'pgops-restore-test-pgbackrest.service')


# --- 4. the metrics ---------------------------------------------------------------------------------

def test_metrics_timer_runs_every_minute(host):
    assert 'OnCalendar=*-*-* *:*:00' in timer_calendar(host, 'pgops-backup-metrics.timer')


def test_metrics_textfile_has_the_backup_age_the_dump_and_the_drill(host):
    started = start(host, 'pgops-backup-metrics.service')
    text = host.file(PROM).content_string
    assert metric(text, 'pgops_backup_metrics_last_run_timestamp_seconds') >= started - 5
    assert metric(text, 'pgops_backup_stanza_status_code', stanza='main') == 0
    # The newest backup is minutes old (side_effect.yml and the earlier tests took some), within the 2 h objective.
    age = metric(text, 'pgops_backup_last_backup_age_seconds', type='any')
    assert 0 <= age < 1800 and age < metric(text, 'pgops_backup_last_backup_max_age_seconds', type='any') == 7200
    assert metric(text, 'pgops_backup_dump_last_failed', dump='nightly') == 0
    assert 0 <= metric(text, 'pgops_backup_dump_last_success_age_seconds', dump='nightly') < 600
    assert metric(text, 'pgops_backup_drill_last_success', drill='pgbackrest') == 1


def test_node_exporter_serves_the_textfile(host):
    assert host.service('prometheus-node-exporter').is_running
    scrape = host.check_output('python3 -c %s', 'import urllib.request as u; '
                               'print(u.urlopen("http://127.0.0.1:9100/metrics", timeout=10).read().decode())')
    assert 'pgops_backup_stanza_status_code{stanza="main"} 0' in scrape


# --- 5. module_defaults with the collection's action group -------------------------------------------

def test_module_defaults_gave_the_stanza_to_the_pgbackrest_modules(host):
    evidence = json.loads(host.file('/root/module-defaults.json').content_string)
    assert evidence['stanzas'] == ['main']
    info = json.loads(host.check_output('runuser -u postgres -- pgbackrest --stanza=main --output=json info'))[0]
    labels = dict((b['label'], b.get('annotation')) for b in info['backup'])
    assert labels.get(evidence['backup_label']) == {'reason': 'module_defaults'}
    assert evidence['newest_label'] == evidence['backup_label']
