"""Backup health monitoring on a real host, in the order an incident happens: healthy metrics, the
repository breaking (archiving fails, WAL piles up, a backup fails), the alerts, the health playbook
and the notification hook noticing, the repair, and a recovery into the broken period.

The tests of this file depend on each other and run in file order. Every metrics file read here is
kept in $PGOPS_LOG_DIR/monitoring-metrics/ (the docs' dashboard screenshot is rendered from them).
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest
import yaml
from testhosts import molecule_hosts, psql, run_playbook

testinfra_hosts = molecule_hosts()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
RULES = os.path.join(ROOT, 'roles', 'monitoring', 'files', 'pgops-backup.rules.yml')
CAPTURE_DIR = os.path.join(os.environ['PGOPS_LOG_DIR'], 'monitoring-metrics')
PROM = '/var/lib/prometheus/node-exporter/pgops_backup.prom'
REPO = '/var/lib/pgbackrest'
WAL_READY_MAX = 2  # monitoring_wal_ready_max in converge.yml
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
SIMPLE_TEMPLATE_RE = re.compile(r'\{\{\s*\$(labels\.(\w+)|value)\s*\}\}')

# What the tests hand on to later tests: captures in order, the PITR target time.
CAPTURES = []
STATE = {}


class Metrics(object):
    """A parsed exposition: value(name, **labels) finds exactly one sample."""

    def __init__(self, text):
        self.text = text
        self.samples = []
        for line in text.splitlines():
            if not line or line.startswith('#'):
                continue
            match = SAMPLE_RE.match(line)
            assert match, 'not a sample line: %r' % line
            labels = dict((k, v.replace('\\"', '"').replace('\\\\', '\\')) for k, v in LABEL_RE.findall(match.group(2) or ''))
            self.samples.append((match.group(1), labels, float(match.group(3)), match.group(2) or ''))

    def find(self, name, **labels):
        return [s for s in self.samples if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]

    def value(self, name, **labels):
        found = self.find(name, **labels)
        assert len(found) == 1, '%s %s: %d samples\n%s' % (name, labels, len(found), self.text)
        return found[0][2]


@pytest.fixture(scope='module', autouse=True)
def capture_dir():
    shutil.rmtree(CAPTURE_DIR, ignore_errors=True)
    os.makedirs(CAPTURE_DIR)


def run_metrics(host, label):
    """One run of the service the timer starts; the file it wrote, kept for later tests and the docs."""
    cmd = host.run('systemctl start pgops-backup-metrics.service')
    assert cmd.rc == 0, host.check_output('journalctl -u pgops-backup-metrics.service -n 20 --no-pager')
    text = host.file(PROM).content_string
    CAPTURES.append((label, text))
    with open(os.path.join(CAPTURE_DIR, '%02d-%s.prom' % (len(CAPTURES), label)), 'w') as handle:
        handle.write(text)
    return Metrics(text)


def promtool(*argv, **kwargs):
    binary = shutil.which('promtool')
    assert binary, 'promtool is missing on the controller: run tests/utils/setup.sh'
    return subprocess.run([binary] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, **kwargs)


def keep(name, text):
    with open(os.path.join(CAPTURE_DIR, name), 'w') as handle:
        handle.write(text)


def archiver(host):
    row = psql(host, "SELECT coalesce(last_archived_wal, ''), failed_count, "
                     "coalesce(last_failed_time > last_archived_time, last_failed_time IS NOT NULL) FROM pg_stat_archiver")
    wal, failed, failing = row.split('|')
    return wal, int(failed), failing == 't'


def ready_count(host):
    return int(host.check_output('ls /var/lib/postgresql/*/main/pg_wal/archive_status | grep -c "\\.ready$" || true'))


def switch_wal(host, label):
    psql(host, "INSERT INTO monitoring_probe (label) VALUES ('%s')" % label)
    return psql(host, 'SELECT pg_walfile_name(pg_switch_wal())')


def health(name):
    """playbooks/health.yml as an operator runs it; output kept, without colours."""
    rc, output = run_playbook('health.yml')
    output = re.sub(r'\x1b\[[0-9;]*m', '', output)
    keep('health-%s.txt' % name, output)
    return rc, output


def wait_for(what, check, timeout=90, interval=1):
    deadline = time.time() + timeout
    while True:
        result = check()
        if result or time.time() > deadline:
            assert result, 'timed out after %d s waiting for %s' % (timeout, what)
            return result
        time.sleep(interval)


def test_role_installed_the_timer_objectives_and_hook(host):
    for name in ('pgops-backup-metrics.timer', 'pgops-backup-window.timer'):
        timer = host.service(name)
        assert timer.is_enabled and timer.is_running, name
    assert 'OnCalendar=*-*-* *:00/15:00' in host.check_output('systemctl show -P TimersCalendar pgops-backup-window.timer')
    assert 'OnCalendar=*-*-* *:*:00' in host.check_output('systemctl show -P TimersCalendar pgops-backup-metrics.timer')
    unit = host.file('/etc/systemd/system/pgops-backup-metrics.service').content_string
    assert 'OnFailure=pgops-notify@%n.service' in unit
    assert ' --run-as postgres metrics --textfile-dir /var/lib/prometheus/node-exporter ' in unit
    objectives = json.loads(host.file('/etc/pgops-backup/monitoring.json').content_string)
    assert objectives['wal_ready_max'] == WAL_READY_MAX and objectives['full_backup_max_age'] == '8d'
    notify = json.loads(host.file('/etc/pgops-backup/notify.json').content_string)
    assert notify['command'][:2] == ['/bin/sh', '-c'] and 'http://127.0.0.1:9099/pgops-hook' in notify['command'][2]
    assert host.file('/etc/pgops-backup/notify.json').mode == 0o600


def test_healthy_host_metrics_are_valid_and_plausible(host):
    psql(host, 'CREATE TABLE monitoring_probe (label text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())')
    segment = switch_wal(host, 'healthy')
    wait_for('segment %s to be archived' % segment, lambda: archiver(host)[0] >= segment)
    m = run_metrics(host, 'healthy')
    check = promtool('check', 'metrics', input=m.text)
    assert check.returncode == 0 and check.stdout == '', check.stdout
    for source in ('pgbackrest', 'postgres', 'records'):
        assert m.value('pgops_backup_collector_success', source=source) == 1
    assert m.value('pgops_backup_stanza_status_code', stanza='main') == 0
    assert m.value('pgops_backup_repo_status_code', stanza='main', repo='1') == 0
    # The first full backup was taken by the converge, minutes ago.
    full_age = m.value('pgops_backup_last_backup_age_seconds', stanza='main', repo='1', type='full')
    assert 0 <= full_age < 1800
    assert full_age < m.value('pgops_backup_last_backup_max_age_seconds', stanza='main', repo='1', type='full') == 691200
    assert m.value('pgops_backup_last_backup_age_seconds', type='any') < m.value(
        'pgops_backup_last_backup_max_age_seconds', type='any') == 7200
    size = m.value('pgops_backup_last_backup_size_bytes', type='full')
    assert 10e6 < size < 200e6
    assert 0 < m.value('pgops_backup_last_backup_repo_size_bytes', type='full') < size
    assert 0 <= m.value('pgops_backup_last_backup_duration_seconds', type='full') < 120
    labels = dict(stanza='main', cluster='17/main')
    assert m.value('pgops_backup_postgres_up', **labels) == 1
    assert m.value('pgops_backup_postgres_in_recovery', **labels) == 0
    assert m.value('pgops_backup_archiver_enabled', **labels) == 1
    assert m.value('pgops_backup_archiver_failed_total', **labels) == 0
    assert m.value('pgops_backup_archiver_failing', **labels) == 0
    assert m.value('pgops_backup_archiver_archived_total', **labels) >= 2
    assert m.value('pgops_backup_archiver_last_archived_age_seconds', **labels) < 120
    assert m.value('pgops_backup_wal_ready_segments', **labels) <= WAL_READY_MAX
    assert m.value('pgops_backup_wal_ready_max_segments', **labels) == WAL_READY_MAX
    archived_end = m.value('pgops_backup_archive_max_lsn_bytes', stanza='main', repo='1')
    assert 0 < archived_end <= m.value('pgops_backup_postgres_current_lsn_bytes', **labels) + 16 * 1024 * 1024
    info = m.find('pgops_backup_archive_info', stanza='main', repo='1')
    assert len(info) == 1 and info[0][1]['archive_id'] == '17-1' and info[0][1]['max'] >= segment
    assert abs(m.value('pgops_backup_metrics_last_run_timestamp_seconds') - time.time()) < 120


def test_pg_dump_job_and_restore_drill_records_reach_the_metrics(host):
    """The record names the pg_dump job and the restore drill write are the ones the metrics read."""
    dump = host.run('pgops-backup dump --job nightly --destination /var/backups/pgops-dump --database postgres')
    assert dump.rc == 0, dump.stderr
    drill = host.run('pgops-backup restore-test --source pgbackrest --stanza main --name main')
    assert drill.rc == 0, drill.stdout + drill.stderr
    records = json.loads(host.file('/var/lib/pgops-backup/records/pg-dump-nightly.json').content_string)
    m = run_metrics(host, 'jobs')
    assert m.value('pgops_backup_dump_last_failed', dump='nightly') == 0
    assert m.value('pgops_backup_dump_last_success_size_bytes', dump='nightly') == records['size_bytes'] > 0
    assert 0 <= m.value('pgops_backup_dump_last_success_age_seconds', dump='nightly') < 60
    assert m.value('pgops_backup_dump_max_age_seconds', dump='nightly') == 26 * 3600
    assert m.value('pgops_backup_drill_last_success', drill='main') == 1
    assert 0 <= m.value('pgops_backup_drill_last_success_age_seconds', drill='main') < 60
    assert m.value('pgops_backup_drill_max_age_seconds', drill='main') == 8 * 86400
    assert m.value('pgops_backup_job_last_failed', record='restore_test-main') == 0
    assert promtool('check', 'metrics', input=m.text).returncode == 0


def test_node_exporter_serves_the_metrics(host):
    assert ('ARGS="--collector.textfile.directory=/var/lib/prometheus/node-exporter"'
            in host.file('/etc/default/prometheus-node-exporter').content_string)
    assert host.service('prometheus-node-exporter').is_running
    scrape = host.check_output('curl -fsS http://127.0.0.1:9100/metrics')
    assert 'pgops_backup_stanza_status_code{stanza="main"} 0' in scrape
    assert re.search(r'^node_textfile_scrape_error 0$', scrape, re.MULTILINE)
    assert re.search(r'^node_textfile_mtime_seconds\{file="[^"]*pgops_backup\.prom"\} ', scrape, re.MULTILINE)


def test_health_playbook_passes_on_the_healthy_host(host):
    rc, output = health('healthy')
    assert rc == 0, output
    name = host.backend.hostname
    assert re.search(r'host\s+stanza\s+last full\s+last incr\s+archiving\s+recovery window\s+last drill\s+last dump'
                     r'\s+objectives', output)
    # the recovery window column: '-' until the window timer's first run, then the window's length
    row = r'^\s*%s\s+main\s+\S+( \S+)?\s+-\s+ok \(\d+ waiting, last .+? ago\)\s+(-|\d\S*( \d\S*)?)\s+ok .+? ago\s+ok .+? ago' \
          r'\s+ok$' % name
    assert re.search(row, output, re.MULTILINE), output


def test_broken_repository_shows_within_two_metrics_runs(host):
    before = Metrics(CAPTURES[-1][1])
    labels = dict(stanza='main', cluster='17/main')
    host.run_expect([0], 'mount --bind %s %s && mount -o remount,bind,ro %s' % (REPO, REPO, REPO))
    switch_wal(host, 'broken')
    time.sleep(1)
    STATE['target'] = psql(host, 'SELECT clock_timestamp()::text')
    time.sleep(1)
    switch_wal(host, 'after-target')
    for n in range(3):
        switch_wal(host, 'piling-%d' % n)
    # The scheduled backup runs into the broken repository, fails and calls the notification hook.
    backup = host.run('systemctl start pgbackrest-main-incr.service')
    assert backup.rc != 0
    STATE['first_broken'] = len(CAPTURES)
    run_metrics(host, 'broken-1')
    time.sleep(5)
    second = run_metrics(host, 'broken-2')
    assert second.value('pgops_backup_archiver_failed_total', **labels) > before.value(
        'pgops_backup_archiver_failed_total', **labels)
    assert second.value('pgops_backup_wal_ready_segments', **labels) > max(
        WAL_READY_MAX, before.value('pgops_backup_wal_ready_segments', **labels))
    assert second.value('pgops_backup_archiver_failing', **labels) == 1
    assert second.value('pgops_backup_job_last_failed', record='pgbackrest-backup-main-incr') == 1
    assert promtool('check', 'metrics', input=second.text).returncode == 0


def render_annotation(template, labels, value):
    """The annotations of the alerts checked here use only $labels.NAME and $value."""
    def replace(match):
        if match.group(1) == 'value':
            return ('%d' % value) if float(value).is_integer() else repr(value)
        return labels[match.group(2)]
    text = SIMPLE_TEMPLATE_RE.sub(replace, template)
    assert '{{' not in text, 'template too complex for this test: %s' % template
    return text


def mark_stale(series):
    """A series that leaves the textfile is marked stale at the next scrape, as Prometheus does."""
    for values in series.values():
        for minute in range(1, len(values)):
            if values[minute] == '_' and values[minute - 1] not in ('_', 'stale'):
                values[minute] = 'stale'


def test_alerts_fire_in_promtool_with_the_captured_series(host):
    """The captures in order, one minute apart (the timer's period); the last broken capture is
    repeated for the minutes the outage lasts, as every later run would see the same."""
    instance = '%s:9100' % host.backend.hostname
    hold = 6
    sequence = [Metrics(capture[1]) for capture in CAPTURES] + [Metrics(CAPTURES[-1][1])] * hold
    series = {}
    for minute, m in enumerate(sequence):
        for name, labels, value, raw in m.samples:
            key = '%s{%s}' % (name, ','.join(filter(None, [raw, 'instance="%s"' % instance, 'job="node"'])))
            series.setdefault(key, ['_'] * len(sequence))[minute] = repr(value) if not value.is_integer() else '%d' % value
    mark_stale(series)
    with open(RULES) as handle:
        rules = dict((r['alert'], r) for g in yaml.safe_load(handle)['groups'] for r in g['rules'])

    def expected(alert, sample_filter, minute):
        m = sequence[minute]
        out = []
        for name, labels, value, raw in m.samples:
            if sample_filter(name, labels, value, m):
                exp_labels = dict(labels, instance=instance, job='node', **rules[alert]['labels'])
                out.append({'exp_labels': exp_labels, 'exp_annotations': dict(
                    (k, render_annotation(v, exp_labels, value)) for k, v in rules[alert]['annotations'].items())})
        return out

    def first(predicate):
        return min(i for i, m in enumerate(sequence) if predicate(m))

    labels = dict(stanza='main', cluster='17/main')
    failing_from = first(lambda m: m.value('pgops_backup_archiver_failing', **labels) == 1)
    piling_from = first(lambda m: m.value('pgops_backup_wal_ready_segments', **labels) > WAL_READY_MAX)
    job_from = first(lambda m: any(s[2] == 1 for s in m.find('pgops_backup_job_last_failed',
                                                             record='pgbackrest-backup-main-incr')))
    # Within two runs of the metrics service after the repository broke.
    assert STATE['first_broken'] <= min(failing_from, piling_from, job_from)
    assert max(failing_from, piling_from, job_from) <= STATE['first_broken'] + 1, (failing_from, piling_from, job_from)
    tests = [
        {'eval_time': '0m', 'alertname': 'PgopsBackupArchivingFailing', 'exp_alerts': []},
        {'eval_time': '0m', 'alertname': 'PgopsBackupWalPilingUp', 'exp_alerts': []},
        {'eval_time': '0m', 'alertname': 'PgopsBackupJobFailed', 'exp_alerts': []},
        {'eval_time': '%dm' % (failing_from + 1), 'alertname': 'PgopsBackupArchivingFailing', 'exp_alerts': []},
        {'eval_time': '%dm' % (failing_from + 2), 'alertname': 'PgopsBackupArchivingFailing',
         'exp_alerts': expected('PgopsBackupArchivingFailing',
                                lambda n, lb, v, m: n == 'pgops_backup_archiver_failing' and v == 1, failing_from + 2)},
        {'eval_time': '%dm' % (piling_from + 4), 'alertname': 'PgopsBackupWalPilingUp', 'exp_alerts': []},
        {'eval_time': '%dm' % (piling_from + 5), 'alertname': 'PgopsBackupWalPilingUp',
         'exp_alerts': expected('PgopsBackupWalPilingUp',
                                lambda n, lb, v, m: n == 'pgops_backup_wal_ready_segments' and v > WAL_READY_MAX,
                                piling_from + 5)},
        {'eval_time': '%dm' % job_from, 'alertname': 'PgopsBackupJobFailed',
         'exp_alerts': expected('PgopsBackupJobFailed',
                                lambda n, lb, v, m: n == 'pgops_backup_job_last_failed' and v == 1, job_from)},
    ]
    document = {'rule_files': [RULES], 'evaluation_interval': '1m', 'tests': [{
        'name': 'captured on %s: healthy, archiving broken' % host.backend.hostname, 'interval': '1m',
        'input_series': [{'series': k, 'values': ' '.join(v)} for k, v in sorted(series.items())],
        'alert_rule_test': tests}]}
    path = os.path.join(CAPTURE_DIR, 'captured.rules.test.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump(document, handle, default_flow_style=False, sort_keys=False, width=200)
    result = promtool('test', 'rules', path)
    assert result.returncode == 0, result.stdout
    assert 'SUCCESS' in result.stdout


def test_health_playbook_fails_naming_the_host(host):
    rc, output = health('broken')
    assert rc != 0, output
    name = host.backend.hostname
    assert re.search(r'%s\s+main\s+.*FAILING \(\d+ failed, \d+ waiting\).*BREACHED \(\d+\)' % name, output), output
    flat = ' '.join(output.split())  # messages are wrapped in the output
    assert '%s: objectives breached: ' % name in flat
    assert 'cluster 17/main: WAL archiving fails' in flat
    assert 'WAL files wait to be archived, objective %d' % WAL_READY_MAX in flat
    assert re.search(r'%s\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=1' % name, output), output


def test_notification_hook_got_the_unit_and_its_log_lines(host):
    def requests():
        content = host.file('/var/lib/pgops-hook/requests.jsonl')
        if not content.exists:
            return []
        return [json.loads(line) for line in content.content_string.splitlines() if line.strip()]
    found = wait_for('the notification hook to post', lambda: [
        r for r in requests() if r['headers'].get('X-Pgops-Unit') == 'pgbackrest-main-incr.service'], timeout=30)
    request = found[0]
    assert request['path'] == '/pgops-hook'
    assert request['headers']['X-Pgops-Host']
    body = request['body'].splitlines()
    assert 3 <= len(body) <= 30, request['body']
    assert any('pgops-backup: FAILED: pgbackrest backup failed' in line for line in body), request['body']
    assert any('pgbackrest-main-incr.service' in line for line in body), request['body']
    record = json.loads(host.file('/var/lib/pgops-backup/records/notify.json').content_string)
    assert record['unit'] == 'pgbackrest-main-incr.service' and record['status'] == 'ok' and record['notified'] is True


def test_repair_archiving_catches_up_without_a_missing_segment(host):
    labels = dict(stanza='main', cluster='17/main')
    broken = Metrics(CAPTURES[-1][1])
    host.run_expect([0], 'umount %s' % REPO)
    last = switch_wal(host, 'repaired')
    wait_for('archiving to catch up', lambda: archiver(host)[0] >= last and not archiver(host)[2]
             and ready_count(host) == 0, timeout=120, interval=2)
    m = run_metrics(host, 'repaired')
    assert m.value('pgops_backup_archiver_failing', **labels) == 0
    assert m.value('pgops_backup_wal_ready_segments', **labels) == 0
    assert m.value('pgops_backup_archiver_archived_total', **labels) >= broken.value(
        'pgops_backup_archiver_archived_total', **labels) + 6
    check = host.run('runuser -u postgres -- pgbackrest --stanza=main check')
    assert check.rc == 0, check.stdout + check.stderr
    # Every segment from the first archived one to the newest is in the repository.
    names = host.check_output('find %s/archive/main -type f -name "0000000100000000000000*" -printf "%%f\\n"' % REPO)
    segments = sorted(set(int(n[16:24], 16) for n in names.split()))
    assert segments == list(range(segments[0], segments[-1] + 1)), segments
    assert segments[-1] >= int(last[16:24], 16)


def test_pitr_into_the_broken_period(host):
    assert os.path.exists(os.path.join(ROOT, 'plugins', 'modules', 'pitr_restore.py'))
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'],
            os.path.join(ROOT, 'molecule', 'monitoring', 'pitr.yml'), '-e', json.dumps({'pitr_target': STATE['target']})]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    keep('pitr.txt', proc.stdout)
    assert proc.returncode == 0, proc.stdout
    result = json.loads(host.file('/root/pitr-result.json').content_string)
    scratch = result['scratch']
    rows = host.check_output('runuser -u postgres -- psql -XAtq -h %s -p %s -d postgres -c %s',
                             scratch['socket_directory'], str(scratch['port']),
                             'SELECT label FROM monitoring_probe ORDER BY at')
    assert rows.split() == ['healthy', 'broken'], rows


def test_health_playbook_passes_after_the_repair(host):
    rc, output = health('repaired')
    assert rc == 0, output


# --- the recovery window: two full backups, a segment lost between them, a new full backup ---------

WINDOW_RECORD = '/var/lib/pgops-backup/records/recovery-window.json'
WINDOW_CAPTURES = []


def backups(host):
    info = json.loads(host.check_output('runuser -u postgres -- pgbackrest --stanza=main --output=json info'))
    return [b for b in info[0]['backup'] if not b.get('error')]


def full_backup(host):
    cmd = host.run('systemctl start pgbackrest-main-full.service')
    assert cmd.rc == 0, host.check_output('journalctl -u pgbackrest-main-full.service -n 30 --no-pager')
    return [b for b in backups(host) if b['type'] == 'full'][-1]


def window_now(host, label, settle=None):
    """The window as the timer's service computes it (settle=N: as an operator does with --settle N);
    then the metrics that read its record."""
    if settle is None:
        cmd = host.run('systemctl start pgops-backup-window.service')
        assert cmd.rc == 0, host.check_output('journalctl -u pgops-backup-window.service -n 30 --no-pager')
    else:
        cmd = host.run('pgops-backup window --settle %d' % settle)
        assert cmd.rc == 0, cmd.stdout + cmd.stderr
        keep('window-%s.txt' % label, cmd.stdout)
    record = json.loads(host.file(WINDOW_RECORD).content_string)
    m = run_metrics(host, 'window-%s' % label)
    WINDOW_CAPTURES.append(m)
    return record['windows'][0], m, cmd.stdout


def segment_file(host, segment):
    return host.check_output('find %s/archive/main -type f -name "%s-*"' % (REPO, segment))


def test_two_full_backups_the_window_reaches_back_to_the_oldest(host):
    first = backups(host)[0]
    assert first['type'] == 'full'  # taken by the converge
    STATE['f2'] = full_backup(host)
    segment = switch_wal(host, 'window')
    wait_for('segment %s to be archived' % segment, lambda: archiver(host)[0] >= segment)
    win, m, _out = window_now(host, 'healthy')
    assert win['ok'] and win['recoverable'] and win['gaps'] == [] and win['missing_segments'] == 0
    assert win['first_recoverable']['backup'] == first['label']
    assert win['first_recoverable']['epoch'] == first['timestamp']['stop'] + 1
    latest = win['latest_recoverable']['epoch']
    assert STATE['f2']['timestamp']['stop'] < latest <= time.time() + 5
    r = dict(stanza='main', repo='1')
    assert m.value('pgops_backup_window_first_recoverable_timestamp_seconds', **r) == first['timestamp']['stop'] + 1
    assert abs(m.value('pgops_backup_window_seconds', **r) - (latest - first['timestamp']['stop'] - 1)) < 1
    assert m.value('pgops_backup_wal_gaps', **r) == 0 and m.value('pgops_backup_window_recoverable', **r) == 1
    assert promtool('check', 'metrics', input=m.text).returncode == 0
    STATE['f1'] = first


def test_a_segment_lost_between_them_is_named_by_the_window_the_metrics_and_health(host):
    after_f1 = int(STATE['f1']['archive']['stop'][16:24], 16) + 1
    before_f2 = int(STATE['f2']['archive']['start'][16:24], 16) - 1
    assert after_f1 <= before_f2, (STATE['f1']['archive'], STATE['f2']['archive'])
    lost = '00000001%08X%08X' % (0, (after_f1 + before_f2) // 2)
    path = segment_file(host, lost)
    assert path, 'segment %s is not in the repository' % lost
    host.run_expect([0], 'mkdir -p /root/lost-wal && mv %s /root/lost-wal/' % path)
    STATE['lost'] = lost
    # --settle 0: the segments around it were archived minutes ago, sooner than the timer would call it a gap
    win, m, out = window_now(host, 'gap', settle=0)
    assert 'gap: 1 segment(s) missing on timeline 1, %s..%s' % (lost, lost) in out, out
    assert 'BLOCKING' in out
    gap = win['gaps'][0]
    assert (gap['first_missing'], gap['segments'], gap['blocking']) == (lost, 1, True)
    assert (gap['backup_before'], gap['backup_after']) == (STATE['f1']['label'], STATE['f2']['label'])
    assert win['first_recoverable']['backup'] == STATE['f2']['label']  # the window restarts after the gap
    assert win['unrecoverable'][0]['to'] == STATE['f2']['timestamp']['stop'] + 1 and win['unrecoverable_seconds'] > 0
    r = dict(stanza='main', repo='1')
    assert m.value('pgops_backup_wal_gap_info', first_missing=lost, blocking='1', timeline='1', **r) == 1
    assert m.value('pgops_backup_wal_gaps_blocking', **r) == 1 and m.value('pgops_backup_wal_missing_segments', **r) == 1
    rc, output = health('gap')
    assert rc != 0, output
    flat = ' '.join(output.split())
    name = host.backend.hostname
    assert re.search(r'%s\s+main\s+.*GAP %s.*BREACHED' % (name, lost), output), output
    assert '%s: objectives breached: ' % name in flat, flat
    assert 'stanza main repo1: WAL gap %s..%s (timeline 1)' % (lost, lost) in flat, flat


def test_a_new_full_backup_stops_the_gap_blocking_and_keeps_reporting_it(host):
    STATE['f3'] = full_backup(host)
    win, m, out = window_now(host, 'after-full', settle=0)
    gap = win['gaps'][0]
    assert (gap['first_missing'], gap['blocking']) == (STATE['lost'], False)
    assert 'a full backup was taken since it was found' in out
    assert win['first_recoverable']['backup'] == STATE['f2']['label'] and win['recoverable']
    assert win['unrecoverable'][0]['until_backup'] == STATE['f2']['label']  # reported, not dropped
    r = dict(stanza='main', repo='1')
    assert m.value('pgops_backup_wal_gaps_blocking', **r) == 0 and m.value('pgops_backup_wal_gaps', **r) == 1
    assert m.value('pgops_backup_wal_gap_info', first_missing=STATE['lost'], blocking='0', **r) == 1
    assert m.value('pgops_backup_window_unrecoverable_seconds', **r) > 0
    rc, output = health('after-full')
    assert rc == 0, output


def test_the_gap_alert_fires_from_the_captured_series_and_clears_after_the_full_backup(host):
    """healthy, then the gap for 25 minutes (the metrics timer repeats the record every minute), then
    the record after the new full backup."""
    instance = '%s:9100' % host.backend.hostname
    healthy, gap, after = WINDOW_CAPTURES[0], WINDOW_CAPTURES[1], WINDOW_CAPTURES[2]
    sequence = [healthy] + [gap] * 25 + [after] * 5
    series = {}
    for minute, m in enumerate(sequence):
        for name, labels, value, raw in m.samples:
            if not name.startswith(('pgops_backup_wal_', 'pgops_backup_window_')):
                continue
            key = '%s{%s}' % (name, ','.join(filter(None, [raw, 'instance="%s"' % instance, 'job="node"'])))
            series.setdefault(key, ['_'] * len(sequence))[minute] = repr(value) if not value.is_integer() else '%d' % value
    mark_stale(series)
    with open(RULES) as handle:
        rule = [r for g in yaml.safe_load(handle)['groups'] for r in g['rules'] if r.get('alert') == 'PgopsBackupWalGap'][0]
    hold = int(rule['for'].rstrip('m'))
    labels = [s[1] for s in gap.find('pgops_backup_wal_gap_info', blocking='1')][0]
    exp_labels = dict(labels, instance=instance, job='node', **rule['labels'])
    firing = [{'exp_labels': exp_labels, 'exp_annotations': dict(
        (k, render_annotation(v, exp_labels, 1)) for k, v in rule['annotations'].items())}]
    assert exp_labels['first_missing'] == STATE['lost']
    tests = [{'eval_time': '%dm' % hold, 'alertname': 'PgopsBackupWalGap', 'exp_alerts': []},
             {'eval_time': '%dm' % (hold + 1), 'alertname': 'PgopsBackupWalGap', 'exp_alerts': firing},
             {'eval_time': '%dm' % (len(sequence) - 1), 'alertname': 'PgopsBackupWalGap', 'exp_alerts': []}]
    document = {'rule_files': [RULES], 'evaluation_interval': '1m', 'tests': [{
        'name': 'captured on %s: a WAL gap, then a full backup' % host.backend.hostname, 'interval': '1m',
        'input_series': [{'series': k, 'values': ' '.join(v)} for k, v in sorted(series.items())],
        'alert_rule_test': tests}]}
    path = os.path.join(CAPTURE_DIR, 'captured-gap.rules.test.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump(document, handle, default_flow_style=False, sort_keys=False, width=200)
    result = promtool('test', 'rules', path)
    assert result.returncode == 0, result.stdout
