# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup health metrics: collection from pgBackRest, PostgreSQL and the job records, and the exact
Prometheus exposition. Only the process boundary is fake (captured `pgbackrest info` JSON, psql
rows, pg_lsclusters lines); data directories and record files are real files under tmp_path."""

from __future__ import annotations

import json
import os
import re

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import metrics, process
from ansible_collections.pgops.backup.plugins.module_utils.postgres import FIELD_SEP, RECORD_SEP
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.fakes import FakeProcess
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.metrics_fakes import (
    FAILING, HEALTHY, NOW, data_dir, host, write_record)

DURATION_RE = re.compile(r'^pgops_backup_metrics_duration_seconds [0-9.e-]+$', re.MULTILINE)


@pytest.fixture(autouse=True)
def not_root(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)


def collect(fake, record_dir='/nonexistent/records', objectives=None, state=None, now=NOW):
    runner = Runner(run=fake, which=fake.which, run_as='postgres')
    return metrics.collect(runner, record_dir=record_dir, objectives=objectives, state=state, now=now)


def exposition(snap):
    text = metrics.render(snap)
    assert len(DURATION_RE.findall(text)) == 1
    return DURATION_RE.sub('pgops_backup_metrics_duration_seconds D', text)


def samples(text):
    return [line for line in text.splitlines() if line and not line.startswith('#')]


HEALTHY_EXPOSITION = '''\
# HELP pgops_backup_metrics_last_run_timestamp_seconds When pgops-backup metrics last collected these values (Unix time).
# TYPE pgops_backup_metrics_last_run_timestamp_seconds gauge
pgops_backup_metrics_last_run_timestamp_seconds 1795255901
# HELP pgops_backup_metrics_duration_seconds How long the collection took.
# TYPE pgops_backup_metrics_duration_seconds gauge
pgops_backup_metrics_duration_seconds D
# HELP pgops_backup_collector_success Whether reading a source worked (1) or failed (0): pgbackrest, postgres, records.
# TYPE pgops_backup_collector_success gauge
pgops_backup_collector_success{source="pgbackrest"} 1
pgops_backup_collector_success{source="postgres"} 1
pgops_backup_collector_success{source="records"} 1
# HELP pgops_backup_stanza_status_code pgBackRest status code of the stanza: 0 ok, 1 missing stanza path, 2 no valid backups, \
3 missing stanza data, 4 different across repos, 5 database mismatch, 6 requested backup not found, 99 other.
# TYPE pgops_backup_stanza_status_code gauge
pgops_backup_stanza_status_code{stanza="main"} 0
# HELP pgops_backup_stanza_backup_running Whether a backup of the stanza holds the lock now.
# TYPE pgops_backup_stanza_backup_running gauge
pgops_backup_stanza_backup_running{stanza="main"} 0
# HELP pgops_backup_repo_status_code pgBackRest status code of the stanza in one repository (0 ok).
# TYPE pgops_backup_repo_status_code gauge
pgops_backup_repo_status_code{stanza="main",repo="1"} 0
# HELP pgops_backup_backups Number of backups of the stanza in the repository.
# TYPE pgops_backup_backups gauge
pgops_backup_backups{stanza="main",repo="1"} 1
# HELP pgops_backup_last_backup_timestamp_seconds When the newest backup of the type (full, diff, incr; any: the newest of all) \
finished (Unix time).
# TYPE pgops_backup_last_backup_timestamp_seconds gauge
pgops_backup_last_backup_timestamp_seconds{stanza="main",repo="1",type="full"} 1795252301
pgops_backup_last_backup_timestamp_seconds{stanza="main",repo="1",type="any"} 1795252301
# HELP pgops_backup_last_backup_age_seconds Seconds since the newest backup of the type finished.
# TYPE pgops_backup_last_backup_age_seconds gauge
pgops_backup_last_backup_age_seconds{stanza="main",repo="1",type="full"} 3600
pgops_backup_last_backup_age_seconds{stanza="main",repo="1",type="any"} 3600
# HELP pgops_backup_last_backup_duration_seconds How long the newest backup of the type took.
# TYPE pgops_backup_last_backup_duration_seconds gauge
pgops_backup_last_backup_duration_seconds{stanza="main",repo="1",type="full"} 1
pgops_backup_last_backup_duration_seconds{stanza="main",repo="1",type="any"} 1
# HELP pgops_backup_last_backup_size_bytes Database size covered by the newest backup of the type.
# TYPE pgops_backup_last_backup_size_bytes gauge
pgops_backup_last_backup_size_bytes{stanza="main",repo="1",type="full"} 23873949
pgops_backup_last_backup_size_bytes{stanza="main",repo="1",type="any"} 23873949
# HELP pgops_backup_last_backup_repo_size_bytes Size of the newest backup of the type in the repository (compressed, without \
the backups it references).
# TYPE pgops_backup_last_backup_repo_size_bytes gauge
pgops_backup_last_backup_repo_size_bytes{stanza="main",repo="1",type="full"} 2857904
pgops_backup_last_backup_repo_size_bytes{stanza="main",repo="1",type="any"} 2857904
# HELP pgops_backup_last_backup_max_age_seconds Objective: the newest backup of the type must be younger than this.
# TYPE pgops_backup_last_backup_max_age_seconds gauge
pgops_backup_last_backup_max_age_seconds{stanza="main",repo="1",type="full"} 691200
pgops_backup_last_backup_max_age_seconds{stanza="main",repo="1",type="any"} 7200
# HELP pgops_backup_archive_info WAL archive range of the stanza in the repository: first and last archived segment (labels \
min, max).
# TYPE pgops_backup_archive_info gauge
pgops_backup_archive_info{stanza="main",repo="1",archive_id="17-1",min="000000010000000000000001",\
max="000000010000000000000004"} 1
# HELP pgops_backup_archive_max_lsn_bytes WAL position (bytes) at the end of the newest archived segment of the current database.
# TYPE pgops_backup_archive_max_lsn_bytes gauge
pgops_backup_archive_max_lsn_bytes{stanza="main",repo="1"} 83886080
# HELP pgops_backup_postgres_up Whether the PostgreSQL cluster answered.
# TYPE pgops_backup_postgres_up gauge
pgops_backup_postgres_up{stanza="main",cluster="17/main"} 1
# HELP pgops_backup_postgres_in_recovery Whether the cluster is a standby (in recovery).
# TYPE pgops_backup_postgres_in_recovery gauge
pgops_backup_postgres_in_recovery{stanza="main",cluster="17/main"} 0
# HELP pgops_backup_postgres_current_lsn_bytes Current WAL write position of a primary (bytes).
# TYPE pgops_backup_postgres_current_lsn_bytes gauge
pgops_backup_postgres_current_lsn_bytes{stanza="main",cluster="17/main"} 167772160
# HELP pgops_backup_archiver_enabled Whether archive_mode is on (or always).
# TYPE pgops_backup_archiver_enabled gauge
pgops_backup_archiver_enabled{stanza="main",cluster="17/main"} 1
# HELP pgops_backup_archiver_archived_total WAL files archived successfully (pg_stat_archiver.archived_count).
# TYPE pgops_backup_archiver_archived_total counter
pgops_backup_archiver_archived_total{stanza="main",cluster="17/main"} 9
# HELP pgops_backup_archiver_failed_total Failed attempts to archive WAL files (pg_stat_archiver.failed_count).
# TYPE pgops_backup_archiver_failed_total counter
pgops_backup_archiver_failed_total{stanza="main",cluster="17/main"} 0
# HELP pgops_backup_archiver_last_archived_timestamp_seconds When the last WAL file was archived (Unix time).
# TYPE pgops_backup_archiver_last_archived_timestamp_seconds gauge
pgops_backup_archiver_last_archived_timestamp_seconds{stanza="main",cluster="17/main"} 1795255861
# HELP pgops_backup_archiver_last_archived_age_seconds Seconds since the last WAL file was archived.
# TYPE pgops_backup_archiver_last_archived_age_seconds gauge
pgops_backup_archiver_last_archived_age_seconds{stanza="main",cluster="17/main"} 40
# HELP pgops_backup_archiver_failing Whether the most recent archive attempt failed (last failure newer than the last success).
# TYPE pgops_backup_archiver_failing gauge
pgops_backup_archiver_failing{stanza="main",cluster="17/main"} 0
# HELP pgops_backup_wal_ready_segments WAL files waiting to be archived: archive_status/*.ready in the cluster's pg_wal.
# TYPE pgops_backup_wal_ready_segments gauge
pgops_backup_wal_ready_segments{stanza="main",cluster="17/main"} 0
# HELP pgops_backup_wal_ready_oldest_age_seconds Age of the oldest WAL file waiting to be archived.
# TYPE pgops_backup_wal_ready_oldest_age_seconds gauge
pgops_backup_wal_ready_oldest_age_seconds{stanza="main",cluster="17/main"} 0
# HELP pgops_backup_wal_ready_max_segments Objective: at most this many WAL files may wait.
# TYPE pgops_backup_wal_ready_max_segments gauge
pgops_backup_wal_ready_max_segments{stanza="main",cluster="17/main"} 10
'''


def test_healthy_host_exposition_is_exact(tmp_path):
    fake = host(data_dir(tmp_path, done=['000000010000000000000009']))
    snap = collect(fake)
    assert exposition(snap) == HEALTHY_EXPOSITION
    assert metrics.evaluate(snap) == []
    assert fake.argvs == [
        ['/usr/bin/pg_lsclusters', '--no-header'],
        ['/usr/bin/psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', FIELD_SEP, '-R', RECORD_SEP,
         '-p', '5432', '-d', "dbname='postgres'", '-c', metrics.ARCHIVER_SQL],
        ['/usr/bin/pgbackrest', '--output=json', 'info'],
    ]


def test_commands_run_as_the_cluster_owner_when_root(tmp_path, monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 0)
    fake = host(data_dir(tmp_path))
    collect(fake)
    assert [argv[:4] for argv in fake.argvs] == [['/usr/bin/runuser', '-u', 'postgres', '--']] * 3


def test_archiving_failing_and_wal_piling_up(tmp_path):
    ready = [('00000001000000000000000%s' % c, age) for c, age in (('A', 300), ('B', 200), ('C', 100), ('D', 10))]
    fake = host(data_dir(tmp_path, ready=ready, done=['000000010000000000000009']), row=FAILING)
    snap = collect(fake, objectives=metrics.normalize_objectives({'wal_ready_max': 3}))
    cluster = [line for line in samples(exposition(snap)) if 'cluster="17/main"' in line]
    assert cluster == [
        'pgops_backup_postgres_up{stanza="main",cluster="17/main"} 1',
        'pgops_backup_postgres_in_recovery{stanza="main",cluster="17/main"} 0',
        'pgops_backup_postgres_current_lsn_bytes{stanza="main",cluster="17/main"} 234881024',
        'pgops_backup_archiver_enabled{stanza="main",cluster="17/main"} 1',
        'pgops_backup_archiver_archived_total{stanza="main",cluster="17/main"} 9',
        'pgops_backup_archiver_failed_total{stanza="main",cluster="17/main"} 3',
        'pgops_backup_archiver_last_archived_timestamp_seconds{stanza="main",cluster="17/main"} 1795255601',
        'pgops_backup_archiver_last_archived_age_seconds{stanza="main",cluster="17/main"} 300',
        'pgops_backup_archiver_last_failed_timestamp_seconds{stanza="main",cluster="17/main"} 1795255881',
        'pgops_backup_archiver_failing{stanza="main",cluster="17/main"} 1',
        'pgops_backup_wal_ready_segments{stanza="main",cluster="17/main"} 4',
        'pgops_backup_wal_ready_oldest_age_seconds{stanza="main",cluster="17/main"} 300',
        'pgops_backup_wal_ready_max_segments{stanza="main",cluster="17/main"} 3',
    ]
    assert [(b['objective'], b['message']) for b in metrics.evaluate(snap)] == [
        ('archiving', 'cluster 17/main: WAL archiving fails (3 failed attempts, last 00000001000000000000000A)'),
        ('wal_ready_max', 'cluster 17/main: 4 WAL files wait to be archived, objective 3'),
    ]
    assert metrics.health_rows(snap)[0]['archiving'] == 'FAILING (3 failed, 4 waiting)'


def test_backup_chain_reports_the_newest_of_each_type(tmp_path):
    fake = host(data_dir(tmp_path), info='info-chain-2.55.1.json')
    snap = collect(fake, now=1795920000)
    wanted = ('pgops_backup_last_backup_age', 'pgops_backup_last_backup_timestamp', 'pgops_backup_backups')
    lines = [line for line in samples(exposition(snap)) if line.startswith(wanted)]
    assert lines == [
        'pgops_backup_backups{stanza="main",repo="1"} 5',
        'pgops_backup_last_backup_timestamp_seconds{stanza="main",repo="1",type="full"} 1795914005',
        'pgops_backup_last_backup_timestamp_seconds{stanza="main",repo="1",type="diff"} 1795311004',
        'pgops_backup_last_backup_timestamp_seconds{stanza="main",repo="1",type="incr"} 1795919403',
        'pgops_backup_last_backup_timestamp_seconds{stanza="main",repo="1",type="any"} 1795919403',
        'pgops_backup_last_backup_age_seconds{stanza="main",repo="1",type="full"} 5995',
        'pgops_backup_last_backup_age_seconds{stanza="main",repo="1",type="diff"} 608996',
        'pgops_backup_last_backup_age_seconds{stanza="main",repo="1",type="incr"} 597',
        'pgops_backup_last_backup_age_seconds{stanza="main",repo="1",type="any"} 597',
    ]
    assert snap['stanzas'][0]['repos'][0]['last']['diff']['label'] == '20261121-091140F_20261122-013002D'
    assert 'pgops_backup_archive_max_lsn_bytes{stanza="main",repo="1"} 369098752' in samples(exposition(snap))
    objectives = metrics.normalize_objectives({'diff_backup_max_age': '1d'})
    snap = collect(host(data_dir(tmp_path, name='again'), info='info-chain-2.55.1.json'), objectives=objectives,
                   now=1795920000)
    assert [b['message'] for b in metrics.evaluate(snap)] == [
        'stanza main repo1: newest diff backup is 7d 01h old, objective 1d 00h']


def test_pgbackrest_2_45_info(tmp_path):
    row = list(HEALTHY)
    snap = collect(host(data_dir(tmp_path), info='info-ok-2.45.json', row=row))
    lines = samples(exposition(snap))
    assert 'pgops_backup_last_backup_duration_seconds{stanza="main",repo="1",type="full"} 3' in lines
    assert 'pgops_backup_last_backup_size_bytes{stanza="main",repo="1",type="full"} 23693678' in lines
    assert ('pgops_backup_archive_info{stanza="main",repo="1",archive_id="15-1",min="000000010000000000000001",'
            'max="000000010000000000000004"} 1') in lines


def test_repository_without_the_stanza(tmp_path):
    snap = collect(host(data_dir(tmp_path), info='info-mixed-2.55.1.json'))
    lines = samples(exposition(snap))
    assert 'pgops_backup_stanza_status_code{stanza="main"} 4' in lines
    assert 'pgops_backup_repo_status_code{stanza="main",repo="2"} 1' in lines
    assert 'pgops_backup_backups{stanza="main",repo="2"} 0' in lines
    assert 'pgops_backup_last_backup_max_age_seconds{stanza="main",repo="2",type="full"} 691200' in lines
    assert not [line for line in lines if line.startswith('pgops_backup_last_backup_age') and 'repo="2"' in line]
    assert [b['message'] for b in metrics.evaluate(snap)] == [
        'stanza main: different across repos (status 4)',
        'stanza main repo2: no full backup',
        'stanza main repo2: no backup',
    ]


def test_stanza_without_backups(tmp_path):
    snap = collect(host(data_dir(tmp_path), info='info-nobackup-2.55.1.json'))
    lines = samples(exposition(snap))
    assert 'pgops_backup_stanza_status_code{stanza="main"} 2' in lines
    assert 'pgops_backup_archive_max_lsn_bytes{stanza="main",repo="1"} 33554432' in lines
    assert metrics.health_rows(snap)[0]['full'] == '-'


def test_pgbackrest_failure_is_a_metric_not_a_crash(tmp_path):
    snap = collect(host(data_dir(tmp_path), info_rc=103))
    lines = samples(exposition(snap))
    assert 'pgops_backup_collector_success{source="pgbackrest"} 0' in lines
    assert not [line for line in lines if line.startswith('pgops_backup_stanza')]
    assert 'pgops_backup_archiver_failing{stanza="main",cluster="17/main"} 0' in lines
    breach = metrics.evaluate(snap)[0]
    assert breach['objective'] == 'collector' and breach['subject'] == 'pgbackrest'
    assert 'pgbackrest info failed with pgBackRest error [103] (repo-invalid)' in breach['message']


def test_host_without_pgbackrest_or_postgresql(tmp_path):
    fake = FakeProcess(missing=('pgbackrest', 'pg_lsclusters'))
    snap = collect(fake)
    assert fake.calls == []
    assert exposition(snap) == (
        '# HELP pgops_backup_metrics_last_run_timestamp_seconds When pgops-backup metrics last collected these values '
        '(Unix time).\n'
        '# TYPE pgops_backup_metrics_last_run_timestamp_seconds gauge\n'
        'pgops_backup_metrics_last_run_timestamp_seconds 1795255901\n'
        '# HELP pgops_backup_metrics_duration_seconds How long the collection took.\n'
        '# TYPE pgops_backup_metrics_duration_seconds gauge\n'
        'pgops_backup_metrics_duration_seconds D\n'
        '# HELP pgops_backup_collector_success Whether reading a source worked (1) or failed (0): pgbackrest, '
        'postgres, records.\n'
        '# TYPE pgops_backup_collector_success gauge\n'
        'pgops_backup_collector_success{source="records"} 1\n')
    assert metrics.evaluate(snap) == []
    assert metrics.health_rows(snap) == [{'stanza': '-', 'status': '-', 'full': '-', 'incr': '-', 'newest': '-',
                                          'archiving': '-', 'window': '-', 'drill': '-', 'dump': '-'}]


def test_cluster_down_is_not_queried(tmp_path):
    fake = host(data_dir(tmp_path), status='down')
    snap = collect(fake)
    assert '/usr/bin/psql' not in [argv[0] for argv in fake.argvs]
    lines = [line for line in samples(exposition(snap)) if 'cluster=' in line]
    assert lines == ['pgops_backup_postgres_up{stanza="",cluster="17/main"} 0',
                     'pgops_backup_wal_ready_segments{stanza="",cluster="17/main"} 0',
                     'pgops_backup_wal_ready_oldest_age_seconds{stanza="",cluster="17/main"} 0',
                     'pgops_backup_wal_ready_max_segments{stanza="",cluster="17/main"} 10']
    assert [r['archiving'] for r in metrics.health_rows(snap)] == ['-', 'DOWN']


def test_psql_failure_and_unreadable_wal_dir(tmp_path):
    fake = host(str(tmp_path / 'gone'), psql_err='psql: error: connection to server on socket failed\n')
    snap = collect(fake)
    lines = samples(exposition(snap))
    assert 'pgops_backup_collector_success{source="postgres"} 0' in lines
    assert 'pgops_backup_postgres_up{stanza="",cluster="17/main"} 0' in lines
    error = snap['collectors']['postgres']['error']
    assert error.startswith('17/main: psql failed; command: /usr/bin/psql')
    assert '17/main: cannot read archive_status:' in error
    assert metrics.health_rows(snap)[-1]['archiving'] == 'UNREADABLE'


def test_standby_and_archiving_off(tmp_path):
    row = ['t', 'off', '(disabled)', '16777216', '0', '', '', '0', '', '', 'f', '']
    snap = collect(host(data_dir(tmp_path), row=row))
    lines = [line for line in samples(exposition(snap)) if 'cluster=' in line]
    assert 'pgops_backup_postgres_in_recovery{stanza="",cluster="17/main"} 1' in lines
    assert 'pgops_backup_archiver_enabled{stanza="",cluster="17/main"} 0' in lines
    assert not [line for line in lines if 'current_lsn' in line or 'last_archived' in line]
    assert metrics.health_rows(snap)[-1] == {'stanza': '(17/main)', 'status': '-', 'full': '-', 'incr': '-',
                                             'newest': '-', 'archiving': 'off', 'window': '-', 'drill': '-', 'dump': '-'}


RECORDS_EXPOSITION = '''\
# HELP pgops_backup_dump_last_success_timestamp_seconds When the pg_dump job last succeeded (Unix time).
# TYPE pgops_backup_dump_last_success_timestamp_seconds gauge
pgops_backup_dump_last_success_timestamp_seconds{dump="nightly"} 1795250000
pgops_backup_dump_last_success_timestamp_seconds{dump="weekly"} 1795000000
# HELP pgops_backup_dump_last_success_age_seconds Seconds since the pg_dump job last succeeded.
# TYPE pgops_backup_dump_last_success_age_seconds gauge
pgops_backup_dump_last_success_age_seconds{dump="nightly"} 5901
pgops_backup_dump_last_success_age_seconds{dump="weekly"} 255901
# HELP pgops_backup_dump_last_success_size_bytes Bytes written by the last successful run of the job.
# TYPE pgops_backup_dump_last_success_size_bytes gauge
pgops_backup_dump_last_success_size_bytes{dump="nightly"} 8300000
pgops_backup_dump_last_success_size_bytes{dump="weekly"} 9000000
# HELP pgops_backup_dump_last_success_duration_seconds How long the last successful run took.
# TYPE pgops_backup_dump_last_success_duration_seconds gauge
pgops_backup_dump_last_success_duration_seconds{dump="nightly"} 2.25
pgops_backup_dump_last_success_duration_seconds{dump="weekly"} 3
# HELP pgops_backup_dump_last_failed Whether the last run of the pg_dump job failed.
# TYPE pgops_backup_dump_last_failed gauge
pgops_backup_dump_last_failed{dump="nightly"} 0
pgops_backup_dump_last_failed{dump="weekly"} 1
# HELP pgops_backup_dump_max_age_seconds Objective: the job must have succeeded within this many seconds.
# TYPE pgops_backup_dump_max_age_seconds gauge
pgops_backup_dump_max_age_seconds{dump="nightly"} 93600
pgops_backup_dump_max_age_seconds{dump="weekly"} 691200
# HELP pgops_backup_drill_last_success Result of the last restore drill: 0 failed, 1 passed (or skipped).
# TYPE pgops_backup_drill_last_success gauge
pgops_backup_drill_last_success{drill="main"} 0
# HELP pgops_backup_drill_last_run_timestamp_seconds When the last restore drill finished (Unix time).
# TYPE pgops_backup_drill_last_run_timestamp_seconds gauge
pgops_backup_drill_last_run_timestamp_seconds{drill="main"} 1795255000
# HELP pgops_backup_drill_last_run_age_seconds Seconds since the last restore drill finished.
# TYPE pgops_backup_drill_last_run_age_seconds gauge
pgops_backup_drill_last_run_age_seconds{drill="main"} 901
# HELP pgops_backup_drill_last_duration_seconds How long the last restore drill took.
# TYPE pgops_backup_drill_last_duration_seconds gauge
pgops_backup_drill_last_duration_seconds{drill="main"} 95.5
# HELP pgops_backup_drill_max_age_seconds Objective: a drill must have passed within this many seconds.
# TYPE pgops_backup_drill_max_age_seconds gauge
pgops_backup_drill_max_age_seconds{drill="main"} 691200
# HELP pgops_backup_job_last_run_timestamp_seconds When the job (its record) last finished (Unix time).
# TYPE pgops_backup_job_last_run_timestamp_seconds gauge
pgops_backup_job_last_run_timestamp_seconds{record="odd\\"name\\\\x"} 1795255800
pgops_backup_job_last_run_timestamp_seconds{record="pg-dump-nightly"} 1795250000
pgops_backup_job_last_run_timestamp_seconds{record="pg-dump-restore-copy"} 1795251000
pgops_backup_job_last_run_timestamp_seconds{record="pg-dump-weekly"} 1795255500
pgops_backup_job_last_run_timestamp_seconds{record="pgbackrest-backup-main-incr"} 1795255800
pgops_backup_job_last_run_timestamp_seconds{record="restore_test-main"} 1795255000
# HELP pgops_backup_job_last_duration_seconds How long the last run of the job took.
# TYPE pgops_backup_job_last_duration_seconds gauge
pgops_backup_job_last_duration_seconds{record="odd\\"name\\\\x"} 1
pgops_backup_job_last_duration_seconds{record="pg-dump-nightly"} 2.25
pgops_backup_job_last_duration_seconds{record="pg-dump-restore-copy"} 4
pgops_backup_job_last_duration_seconds{record="pg-dump-weekly"} 0.5
pgops_backup_job_last_duration_seconds{record="pgbackrest-backup-main-incr"} 1.5
pgops_backup_job_last_duration_seconds{record="restore_test-main"} 95.5
# HELP pgops_backup_job_last_failed Whether the last run of the job failed (skipped runs did not fail).
# TYPE pgops_backup_job_last_failed gauge
pgops_backup_job_last_failed{record="odd\\"name\\\\x"} 0
pgops_backup_job_last_failed{record="pg-dump-nightly"} 0
pgops_backup_job_last_failed{record="pg-dump-restore-copy"} 0
pgops_backup_job_last_failed{record="pg-dump-weekly"} 1
pgops_backup_job_last_failed{record="pgbackrest-backup-main-incr"} 0
pgops_backup_job_last_failed{record="restore_test-main"} 1
'''


def test_records_of_dumps_drills_and_jobs(tmp_path):
    records = tmp_path / 'records'
    write_record(records, 'pg-dump-nightly', job='nightly', status='ok', mode='dump', destination='/d',
                 finished_epoch=1795250000, duration_seconds=2.25, size_bytes=8300000)
    # The last run failed: its last success comes from the state the metrics timer keeps.
    write_record(records, 'pg-dump-weekly', job='weekly', status='failed', mode='dump', destination='/d',
                 finished_epoch=1795255500, duration_seconds=0.5, error='pg_dump failed')
    # `restore-dump` records share the prefix; they are jobs, not dumps.
    write_record(records, 'pg-dump-restore-copy', status='ok', source='/d/app', database='copy',
                 finished_epoch=1795251000, duration_seconds=4)
    write_record(records, 'restore_test-main', status='failed', finished_epoch=1795255000, duration_seconds=95.5)
    write_record(records, 'pgbackrest-backup-main-incr', status='skipped', finished_epoch=1795255800,
                 duration_seconds=1.5)
    write_record(records, 'odd"name\\x', status='ok', finished_epoch=1795255800, duration_seconds=1)
    state = {'dump:weekly': {'finished_epoch': 1795000000, 'duration_seconds': 3, 'size_bytes': 9000000}}
    objectives = metrics.normalize_objectives({'dump_max_age': {'default': '26h', 'weekly': '8d'}})
    snap = collect(FakeProcess(missing=('pgbackrest', 'pg_lsclusters')), record_dir=str(records),
                   objectives=objectives, state=state)
    text = exposition(snap)
    assert text.split('pgops_backup_collector_success{source="records"} 1\n', 1)[1] == RECORDS_EXPOSITION
    assert state == {
        'dump:weekly': {'finished_epoch': 1795000000, 'duration_seconds': 3, 'size_bytes': 9000000},
        'dump:nightly': {'finished_epoch': 1795250000, 'duration_seconds': 2.25, 'size_bytes': 8300000},
    }
    assert [(b['objective'], b['message']) for b in metrics.evaluate(snap)] == [
        ('dump_failed', 'pg_dump job weekly: last run failed 6m 41s ago'),
        ('drill_failed', 'restore drill main: last run failed 15m 01s ago'),
    ]
    row = metrics.health_rows(snap)[0]
    assert (row['drill'], row['dump']) == ('FAILED 15m 01s ago', 'FAILED weekly')


def test_state_keeps_the_last_success_across_a_failure(tmp_path):
    records = tmp_path / 'records'
    state = {}
    write_record(records, 'restore_test-main', status='ok', finished_epoch=NOW - 100, duration_seconds=50)
    first = collect(FakeProcess(missing=('pgbackrest', 'pg_lsclusters')), record_dir=str(records), state=state)
    assert first['drills'][0]['last_success_age'] == 100
    write_record(records, 'restore_test-main', status='failed', finished_epoch=NOW + 500, duration_seconds=20)
    second = collect(FakeProcess(missing=('pgbackrest', 'pg_lsclusters')), record_dir=str(records), state=state,
                     now=NOW + 600)
    drill = second['drills'][0]
    assert (drill['failed'], drill['age'], drill['last_success_age']) == (True, 100, 700)
    assert state == {'drill:main': {'finished_epoch': NOW - 100, 'duration_seconds': 50, 'size_bytes': None}}
    # A damaged record is reported, the others are still read.
    (records / 'broken.json').write_text('{"status": ')
    third = collect(FakeProcess(missing=('pgbackrest', 'pg_lsclusters')), record_dir=str(records), state=state)
    assert third['collectors']['records']['ok'] is False
    assert third['collectors']['records']['error'].startswith('broken.json: ')
    assert len(third['drills']) == 1
    assert 'pgops_backup_collector_success{source="records"} 0' in samples(exposition(third))


def test_prune_only_run_keeps_the_last_dump_from_the_state(tmp_path):
    records = tmp_path / 'records'
    write_record(records, 'pg-dump-nightly', status='ok', mode='prune', finished_epoch=NOW, duration_seconds=0.1)
    snap = collect(FakeProcess(missing=('pgbackrest', 'pg_lsclusters')), record_dir=str(records))
    assert snap['dumps'] == [] and [j['record'] for j in snap['jobs']] == ['pg-dump-nightly']
    state = {'dump:nightly': {'finished_epoch': NOW - 600, 'duration_seconds': 2, 'size_bytes': 7}}
    snap = collect(FakeProcess(missing=('pgbackrest', 'pg_lsclusters')), record_dir=str(records), state=state)
    assert [line for line in samples(exposition(snap)) if line.startswith('pgops_backup_dump')] == [
        'pgops_backup_dump_last_success_timestamp_seconds{dump="nightly"} 1795255301',
        'pgops_backup_dump_last_success_age_seconds{dump="nightly"} 600',
        'pgops_backup_dump_last_success_size_bytes{dump="nightly"} 7',
        'pgops_backup_dump_last_success_duration_seconds{dump="nightly"} 2',
        'pgops_backup_dump_last_failed{dump="nightly"} 0',
        'pgops_backup_dump_max_age_seconds{dump="nightly"} 93600',
    ]
    assert state == {'dump:nightly': {'finished_epoch': NOW - 600, 'duration_seconds': 2, 'size_bytes': 7}}


@pytest.mark.parametrize('value, seconds', [
    (None, None), ('', None), ('off', None), (0, None), ('0', None), (90, 90), ('90', 90), ('90s', 90),
    ('15m', 900), ('2h', 7200), ('26h', 93600), ('8d', 691200), ('1w', 604800), ('1.5h', 5400), (' 3 d ', 259200)])
def test_parse_duration(value, seconds):
    assert metrics.parse_duration(value) == seconds


def test_bad_objectives():
    with pytest.raises(EngineError) as caught:
        metrics.parse_duration('8 days')
    assert caught.value.msg == "'8 days' is not a duration: use seconds or a number with s, m, h, d or w (e.g. 26h)"
    with pytest.raises(EngineError) as caught:
        metrics.normalize_objectives({'full_max_age': '1d'})
    assert caught.value.msg == 'unknown objective(s): full_max_age'
    with pytest.raises(EngineError):
        metrics.normalize_objectives({'wal_ready_max': 'many'})


def test_objectives_from_file_and_overrides(tmp_path):
    path = tmp_path / 'monitoring.json'
    path.write_text(json.dumps({'full_backup_max_age': '8d', 'backup_max_age': '', 'wal_ready_max': 4,
                                'drill_max_age': {'weekly': '8d', 'default': '30d'}}))
    objectives = metrics.load_objectives(str(path), {'incr_backup_max_age': '90m'})
    assert objectives == {'full_backup_max_age': 691200, 'diff_backup_max_age': None, 'incr_backup_max_age': 5400,
                          'backup_max_age': None, 'wal_ready_max': 4, 'archive_max_age': None,
                          'drill_max_age': {'weekly': 691200, 'default': 2592000}, 'dump_max_age': 93600,
                          'window_min': None, 'window_check_max_age': 7200, 'verify_max_age': 691200}
    assert metrics.objective_for(objectives, 'drill_max_age', 'weekly') == 691200
    assert metrics.objective_for(objectives, 'drill_max_age', 'other') == 2592000
    assert metrics.load_objectives(str(tmp_path / 'absent.json')) == metrics.normalize_objectives()
    path.write_text('[1]')
    with pytest.raises(EngineError):
        metrics.load_objectives(str(path))


@pytest.mark.parametrize('seconds, text', [(None, '-'), (5, '5s'), (65, '1m 05s'), (3725, '1h 02m'),
                                           (90000, '1d 01h'), (691200, '8d 00h')])
def test_format_age(seconds, text):
    assert metrics.format_age(seconds) == text


@pytest.mark.parametrize('value, text', [(True, '1'), (False, '0'), (3, '3'), (2.0, '2'), (0.125, '0.125'),
                                         (float('nan'), 'NaN'), (float('inf'), '+Inf'), (1e20, '1e+20')])
def test_format_value(value, text):
    assert metrics.format_value(value) == text


def test_escaping():
    assert metrics.escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert metrics.escape_help('one\\two\nthree "q"') == 'one\\\\two\\nthree "q"'


@pytest.mark.parametrize('segment, size, end', [
    ('000000010000000000000004', 16 * 1024 * 1024, 83886080),
    ('0000000200000001000000FF', 16 * 1024 * 1024, 0x100000000 + 0x100 * 16 * 1024 * 1024),
    ('000000010000000000000004', 64 * 1024 * 1024, 5 * 64 * 1024 * 1024),
    (None, 16 * 1024 * 1024, None), ('00000001.history', 16 * 1024 * 1024, None)])
def test_segment_end_bytes(segment, size, end):
    assert metrics.segment_end_bytes(segment, size) == end


@pytest.mark.parametrize('command, stanza', [
    ('pgbackrest --stanza=main archive-push %p', 'main'), ("pgbackrest --stanza='db-1' archive-push %p", 'db-1'),
    ('/usr/bin/pgbackrest --config=/etc/x.conf --stanza app archive-push "%p"', 'app'),
    ('cp %p /mnt/archive/%f', None), ('', None)])
def test_stanza_of_archive_command(command, stanza):
    assert metrics.stanza_of_archive_command(command) == stanza


def test_write_textfile_is_atomic_and_world_readable(tmp_path):
    old_umask = os.umask(0o077)
    try:
        path = metrics.write_textfile(str(tmp_path), 'a 1\n')
    finally:
        os.umask(old_umask)
    assert path == str(tmp_path / 'pgops_backup.prom')
    assert (tmp_path / 'pgops_backup.prom').read_text() == 'a 1\n'
    assert os.stat(path).st_mode & 0o777 == 0o644
    metrics.write_textfile(str(tmp_path), 'a 2\n')
    assert os.listdir(str(tmp_path)) == ['pgops_backup.prom']
    assert (tmp_path / 'pgops_backup.prom').read_text() == 'a 2\n'


def test_failed_textfile_write_leaves_the_old_file(tmp_path, monkeypatch):
    metrics.write_textfile(str(tmp_path), 'a 1\n')

    def broken_fsync(fd):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(metrics.os, 'fsync', broken_fsync)
    with pytest.raises(OSError):
        metrics.write_textfile(str(tmp_path), 'a 2\n')
    assert os.listdir(str(tmp_path)) == ['pgops_backup.prom']
    assert (tmp_path / 'pgops_backup.prom').read_text() == 'a 1\n'


def test_every_family_is_documented_and_named_by_convention():
    with open(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'docs', 'monitoring.md')) as handle:
        doc = handle.read()
    for name, kind, help_text in metrics.FAMILIES:
        assert name.startswith('pgops_backup_')
        assert (kind == 'counter') == name.endswith('_total'), name
        assert '`%s`' % name in doc, name
        assert help_text.endswith('.')


GAP = {'first_missing': '000000010000000000000006', 'last_missing': '000000010000000000000007', 'segments': 2,
       'timeline': 1, 'blocking': True, 'first_seen': NOW - 900}
WINDOW = {'stanza': 'main', 'repo': 1, 'ok': True, 'recoverable': True, 'oldest_backup': '20261201-010000F',
          'first_recoverable': {'epoch': NOW - 86400, 'backup': '20261202-010000F'},
          'latest_recoverable': {'epoch': NOW - 30, 'segment': '000000010000000000000010', 'bound': 'last commit'},
          'window_seconds': 86370, 'unrecoverable_seconds': 3600, 'missing_segments': 2, 'gaps': [GAP],
          'newest_segment': '000000010000000000000010'}


def window_snap(tmp_path, windows, objectives=None, checked=NOW - 120, verify=None):
    records = tmp_path / 'records'
    write_record(records, 'recovery-window', status='ok', finished_epoch=checked, checked_epoch=checked,
                 duration_seconds=1.5, windows=windows)
    for name, data in (verify or {}).items():
        write_record(records, name, **data)
    return collect(FakeProcess(missing=('pgbackrest', 'pg_lsclusters')), record_dir=str(records),
                   objectives=metrics.normalize_objectives(objectives or {}))


def test_the_window_record_becomes_metrics_breaches_and_a_health_column(tmp_path):
    repo2 = dict(WINDOW, repo=2, gaps=[dict(GAP, blocking=False)], window_seconds=3 * 86400)
    broken = {'stanza': 'other', 'repo': 1, 'ok': False, 'error': 'pgbackrest repo-ls failed'}
    snap = window_snap(tmp_path, [WINDOW, repo2, broken], objectives={'window_min': '2d'}, verify={
        'pgbackrest-verify-main': {'stanza': 'main', 'status': 'failed', 'finished_epoch': NOW - 60,
                                   'duration_seconds': 42}})
    m = dict((line.rsplit(' ', 1)[0], line.rsplit(' ', 1)[1]) for line in metrics.render(snap).splitlines()
             if line and not line.startswith('#'))
    main1, main2 = 'stanza="main",repo="1"', 'stanza="main",repo="2"'
    assert m['pgops_backup_window_check_timestamp_seconds'] == str(NOW - 120)
    assert m['pgops_backup_window_check_age_seconds'] == '120'
    assert m['pgops_backup_window_check_max_age_seconds'] == '7200'
    assert m['pgops_backup_window_seconds{%s}' % main1] == '86370'
    assert m['pgops_backup_window_min_seconds{%s}' % main1] == '172800'
    assert m['pgops_backup_window_first_recoverable_timestamp_seconds{%s}' % main1] == str(NOW - 86400)
    assert m['pgops_backup_window_recoverable{%s}' % main1] == '1'
    assert m['pgops_backup_wal_gaps_blocking{%s}' % main1] == '1'
    assert m['pgops_backup_wal_gaps_blocking{%s}' % main2] == '0'
    assert m['pgops_backup_wal_missing_segments{%s}' % main2] == '2'
    assert m['pgops_backup_wal_gap_info{%s,timeline="1",first_missing="000000010000000000000006",'
             'last_missing="000000010000000000000007",blocking="1"}' % main1] == '1'
    assert m['pgops_backup_window_check_success{stanza="other",repo="1"}'] == '0'
    assert 'pgops_backup_window_seconds{stanza="other",repo="1"}' not in m
    assert m['pgops_backup_verify_last_failed{stanza="main",repo=""}'] == '1'
    assert m['pgops_backup_verify_last_duration_seconds{stanza="main",repo=""}'] == '42'
    assert [(b['objective'], b['subject']) for b in metrics.evaluate(snap)] == [
        ('wal_gap', 'stanza main repo1'), ('window_min', 'stanza main repo1'),
        ('window_check', 'stanza other repo1'), ('verify_failed', 'verify of stanza main')]
    message = metrics.evaluate(snap)[0]['message']
    assert '000000010000000000000006..000000010000000000000007 (timeline 1)' in message and 'take a full backup' in message
    # pgBackRest is not installed in this fake: give the health table the stanza its rows come from
    snap['stanzas'] = [{'name': 'main', 'status_code': 0, 'status_message': 'ok', 'repos': []}]
    assert metrics.health_rows(snap)[0]['window'] == 'repo1 23h 59m GAP 000000010000000000000006; repo2 3d 00h'


def test_a_window_nothing_reaches_and_a_stale_check_are_breaches(tmp_path):
    nothing = dict(WINDOW, recoverable=False, first_recoverable=None, latest_recoverable=None, window_seconds=None)
    snap = window_snap(tmp_path, [nothing], checked=NOW - 3 * 3600)
    assert [b['objective'] for b in metrics.evaluate(snap)] == [
        'window_check_max_age', 'wal_gap', 'window_recoverable']
    text = metrics.render(snap)
    assert 'pgops_backup_window_recoverable{stanza="main",repo="1"} 0\n' in text
    assert 'pgops_backup_window_seconds{' not in text and 'pgops_backup_window_min_seconds{' not in text


def test_an_old_verify_breaches_its_objective_and_no_record_is_no_breach(tmp_path):
    snap = window_snap(tmp_path, [], verify={'pgbackrest-verify-main-repo2': {
        'stanza': 'main', 'repo': 2, 'status': 'ok', 'finished_epoch': NOW - 9 * 86400, 'duration_seconds': 7}})
    assert [(b['objective'], b['subject']) for b in metrics.evaluate(snap)] == [
        ('verify_max_age', 'verify of stanza main repo2')]
    (tmp_path / 'none').mkdir()
    assert metrics.evaluate(window_snap(tmp_path / 'none', [])) == []
