# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drills from pgBackRest: what is restored where, every check, the record, the cleanup.

Only the process boundary is faked (restore_drill_fakes.DrillHost); the drill engine, the scratch
instance, the recovery wait and the checks are the real code.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import metrics
from ansible_collections.pgops.backup.plugins.module_utils import restore_drill as drill_mod
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill import Drill, DrillFailed, Settings
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill_checks import normalize_expected
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import restore_drill_fakes as fakes

SCRATCH = '/var/lib/postgresql/pgops-scratch/drill-pgbackrest'
MARKER = SCRATCH + '.pgops-scratch.json'
ORDERS = 'SELECT count(*) FROM orders'


def drill(host, tmp_path, **settings):
    values = dict(source='pgbackrest', stanza='main')
    values.update(settings)
    clock = fakes.Clock()
    return Drill(host.runner(), Settings(**values), record_dir=str(tmp_path / 'records'), clock=clock,
                 sleep=clock.sleep, hostname='db1.example.com')


def run(host, tmp_path, **settings):
    return drill(host, tmp_path, **settings).run()


def failed(host, tmp_path, **settings):
    with pytest.raises(DrillFailed) as err:
        run(host, tmp_path, **settings)
    return err.value


def by_label(report):
    return dict((('%s %s' % (c['name'], c['database'])) if c['database'] else c['name'], c) for c in report['checks'])


def record(tmp_path, name='pgbackrest'):
    with open(str(tmp_path / 'records' / ('restore_test-%s.json' % name))) as handle:
        return json.load(handle)


# --- a good drill -----------------------------------------------------------------------------------

def test_newest_backup_is_restored_into_an_isolated_scratch_instance_and_every_check_passes(tmp_path):
    host = fakes.DrillHost()
    host.queries[ORDERS] = (0, fakes.rows(['1000']))
    report = run(host, tmp_path, sql_checks=[{'name': 'orders', 'query': ORDERS, 'expected': 1000,
                                              'database': 'appdb'}])
    assert report['status'] == 'ok' and report['backup_label'] == fakes.NEWEST
    (restore,) = host.ran('pgbackrest', 'restore')
    assert '--set=%s' % fakes.NEWEST in restore and '--pg1-path=%s' % SCRATCH in restore
    assert '--type=immediate' in restore and '--target-action=promote' in restore
    assert '--archive-mode=off' in restore
    assert any(a.startswith('--recovery-option=restore_command=') and '--no-archive-async' in a for a in restore)
    # its own port (5432 is production's), started with archive_mode=off and less memory
    (start,) = host.ran('pg_ctl', 'start')
    assert host.port_of_start == 5433 and '-c shared_buffers=128MB' in start[start.index('-o') + 1]
    checks = by_label(report)
    assert [c['status'] for c in report['checks']] == ['pass'] * len(report['checks'])
    assert set(checks) == {'source', 'restore', 'recovery', 'isolation', 'heartbeat', 'amcheck appdb',
                           'amcheck postgres', 'full_read appdb', 'full_read postgres', 'sql:orders', 'checksums'}
    assert 'stopped as soon as the backup was consistent' in checks['recovery']['detail']
    assert 'archive_mode=off' in checks['isolation']['detail'] and 'port 5433' in checks['isolation']['detail']
    assert "returned '1000' as expected" in checks['sql:orders']['detail']
    assert '70 relations, 842 pages' in checks['amcheck appdb']['detail']
    assert 'read every row of 70 tables' in checks['full_read appdb']['detail']
    assert '3981 blocks' in checks['checksums']['detail']


def test_nothing_but_the_scratch_instance_is_touched(tmp_path):
    host = fakes.DrillHost()
    run(host, tmp_path)
    pgbackrest = [[a for a in c['argv'][1:] if not a.startswith('-')][0] for c in host.calls
                  if os.path.basename(c['argv'][0]) == 'pgbackrest']
    assert set(pgbackrest) == {'info', 'restore'}
    # production is read through pg_lsclusters only; every psql, pg_amcheck goes to the scratch port
    assert [s for s in host.sql if s[0] == fakes.PROD_PORT] == []
    for argv in host.ran('pg_amcheck'):
        assert '--port=5433' in argv and '--install-missing' in argv
    for argv in fakes.mutating(host):
        assert fakes.PROD_DATA not in argv
    assert all(c['runuser'] for c in host.calls), 'every program runs as postgres'


def test_the_scratch_instance_is_stopped_before_pg_checksums_and_removed_afterwards(tmp_path):
    host = fakes.DrillHost()
    report = run(host, tmp_path)
    programs = host.programs()
    assert programs.index('pg_checksums') > max(i for i, p in enumerate(programs) if p == 'psql')
    assert host.ran('pg_ctl', 'stop', SCRATCH)
    assert host.ran('rm', '-rf', SCRATCH) and host.ran('rm', '-f', MARKER)
    assert SCRATCH not in host.paths and MARKER not in host.files
    assert report['scratch']['state'] == 'removed' and report['kept'] is False


def test_the_record_is_what_monitoring_reads(tmp_path):
    host = fakes.DrillHost()
    report = run(host, tmp_path)
    data = record(tmp_path)
    assert data['job'] == 'restore_test-pgbackrest'
    assert data['status'] == 'ok' and isinstance(data['finished_epoch'], int) and data['duration_seconds'] >= 0
    assert data['backup_label'] == fakes.NEWEST and data['source'] == 'pgbackrest'
    assert metrics.record_kind('restore_test-pgbackrest', data) == ('drill', 'pgbackrest')
    assert report['record'] == str(tmp_path / 'records' / 'restore_test-pgbackrest.json')
    snap = {'jobs': [], 'dumps': [], 'drills': [], 'collectors': {}}
    metrics._collect_records(snap, str(tmp_path / 'records'), {}, data['finished_epoch'] + 5)
    assert snap['drills'][0]['name'] == 'pgbackrest' and snap['drills'][0]['failed'] is False


def test_timings_measure_rto_and_the_heartbeat_measures_rpo(tmp_path):
    host = fakes.DrillHost()
    report = run(host, tmp_path)
    phases = report['phases']
    for phase in ('preflight', 'restore', 'start', 'recovery', 'checks', 'stop', 'checksums', 'cleanup', 'total'):
        assert phases[phase] >= 0, phase
    assert 0 < report['rto_seconds'] < phases['total']
    heartbeat = by_label(report)['heartbeat']
    # the heartbeat was written 40 s before the end of the backup; the drill runs much later
    assert heartbeat['lag_seconds'] == 40.0
    assert report['rpo_seconds'] == heartbeat['rpo_seconds'] > 6000
    assert '40.0 s before the end of backup %s' % fakes.NEWEST in heartbeat['detail']


def test_the_report_reads_as_a_table(tmp_path):
    host = fakes.DrillHost()
    report = run(host, tmp_path)
    lines = report['lines']
    assert lines[0] == 'Restore drill pgbackrest on db1.example.com: PASSED'
    assert any(line.startswith('  source:    pgBackRest stanza main, backup %s' % fakes.NEWEST) for line in lines)
    header = [line for line in lines if 'CHECK' in line and 'RESULT' in line]
    assert header and any(line.strip().startswith('amcheck appdb') and ' PASS ' in line for line in lines)


# --- sabotage -----------------------------------------------------------------------------------------

def test_a_corrupt_repository_fails_the_restore_and_names_the_file(tmp_path):
    host = fakes.DrillHost()
    host.restore_rc = 29
    host.restore_out = fakes.drill_fixture('restore-corrupt-2.55.1.out')
    host.verify_out = fakes.drill_fixture('verify-corrupt-2.55.1.out')
    err = failed(host, tmp_path)
    assert ("restore: pgbackrest restore into scratch instance drill-pgbackrest failed with pgBackRest error [029]: "
            "raised from local-2 protocol: zst error: [-20] Data corruption detected") in err.msg
    assert "pgbackrest verify of the set found: invalid checksum '20261121-095427F/pg_data/base/5/2838.zst'" in err.msg
    (verify,) = [c['argv'] for c in host.calls if c['argv'][-1] == 'verify']
    assert '--set=%s' % fakes.NEWEST in verify
    assert 'pgbackrest verify' in err.hint
    assert host.ran('pg_ctl', 'start') == []
    assert err.report['status'] == 'failed' and err.report['failed_checks'] == ['restore']
    check = err.report['checks'][-1]
    assert 'command: ' not in check['detail'] and 'restore command begin' in check['output']
    assert record(tmp_path)['status'] == 'failed'
    assert SCRATCH not in host.paths and MARKER not in host.files, 'a failed restore is cleaned up'


def test_a_configuration_error_is_not_verified(tmp_path):
    host = fakes.DrillHost()
    host.restore_rc = 37
    host.restore_err = 'P00  ERROR: [037]: restore command requires option: pg1-path\n'
    err = failed(host, tmp_path)
    assert 'restore command requires option: pg1-path' in err.msg
    assert [c for c in host.calls if c['argv'][-1] == 'verify'] == []


def test_a_failing_sql_check_fails_the_drill_with_what_it_got(tmp_path):
    host = fakes.DrillHost()
    host.queries[ORDERS] = (0, fakes.rows(['1000']))
    err = failed(host, tmp_path, sql_checks=[{'name': 'orders', 'query': ORDERS, 'expected': '999',
                                              'database': 'appdb'}])
    assert "sql:orders: expected '999', got '1000' (database appdb)" in err.msg
    assert err.report['failed_checks'] == ['sql:orders']
    # everything else still ran and passed
    assert by_label(err.report)['checksums']['status'] == 'pass'


def test_a_query_error_is_a_failed_check(tmp_path):
    host = fakes.DrillHost()
    host.queries[ORDERS] = (1, 'ERROR:  relation "orders" does not exist\n')
    err = failed(host, tmp_path, sql_checks=[{'name': 'orders', 'query': ORDERS, 'expected': 1}])
    assert 'sql:orders: the query failed in database postgres: ERROR:  relation "orders" does not exist' in err.msg


def test_corruption_found_by_amcheck_and_by_reading_fails_the_drill(tmp_path):
    host = fakes.DrillHost()
    host.amcheck['appdb'] = (2, 'heap table "appdb.public.orders", block 7, offset 3:\n    xmin 1234 precedes relation '
                                'freeze threshold 0:5678\n', '')
    host.unreadable['appdb'] = [('public.orders', 'invalid page in block 7 of relation base/16384/16390')]
    err = failed(host, tmp_path)
    assert err.report['failed_checks'] == ['amcheck appdb', 'full_read appdb']
    assert 'pg_amcheck found corruption: heap table "appdb.public.orders", block 7' in err.msg
    assert 'public.orders: invalid page in block 7 of relation base/16384/16390 (SQLSTATE XX001)' in err.msg


def test_bad_checksums_fail_and_checksums_off_are_skipped(tmp_path):
    host = fakes.DrillHost()
    host.checksums = (1, 'Files scanned:   1243\nBlocks scanned:  3981\nBad checksums:  1\n',
                      'pg_checksums: error: checksum verification failed in file "base/16384/16390", block 7\n')
    err = failed(host, tmp_path)
    assert 'checksums: pg_checksums --check failed with 1 bad checksum(s): pg_checksums: error: checksum ' \
           'verification failed in file "base/16384/16390", block 7' in err.msg
    host = fakes.DrillHost()
    host.settings['data_checksums'] = 'off'
    report = run(host, tmp_path)
    assert by_label(report)['checksums']['status'] == 'skip' and host.ran('pg_checksums') == []


def test_a_recovery_that_stops_fails_and_the_checks_do_not_run(tmp_path):
    host = fakes.DrillHost()
    host.start_fails = 'could not locate required checkpoint record'
    err = failed(host, tmp_path)
    assert 'recovery: PostgreSQL stopped during recovery: could not locate required checkpoint record' in err.msg
    assert host.ran('pg_amcheck') == [] and 'scratch server log' in err.hint


def test_a_drill_stopped_by_systemd_cleans_up_and_records_the_failure(tmp_path):
    host = fakes.DrillHost()

    def sigterm(argv, data):
        raise SystemExit(143)
    host._pg_amcheck = sigterm
    with pytest.raises(SystemExit):
        run(host, tmp_path)
    assert SCRATCH not in host.paths and host.ran('pg_ctl', 'stop', SCRATCH)
    data = record(tmp_path)
    assert data['status'] == 'failed' and 'the drill was interrupted (SystemExit: 143)' in data['error']


def test_a_scratch_instance_that_is_not_isolated_stops_the_drill_at_once(tmp_path):
    host = fakes.DrillHost()
    host.settings['archive_mode'] = 'on'
    err = failed(host, tmp_path)
    assert 'isolation: the scratch instance is not isolated: archive_mode is on' in err.msg
    assert host.ran('pg_amcheck') == [] and host.ran('pg_ctl', 'stop', SCRATCH)


def test_a_scratch_instance_listening_on_tcp_is_not_isolated(tmp_path):
    host = fakes.DrillHost()
    host.settings['listen_addresses'] = '*'
    err = failed(host, tmp_path)
    assert 'isolation: the scratch instance is not isolated: it listens on TCP (*)' in err.msg


def test_debian_12_postgresql_15_and_pgbackrest_2_45(tmp_path):
    info = json.loads(fakes.fixture('info-ok-2.45.json', os.path.join(fakes.FIXTURES, '..')))
    host = fakes.DrillHost(version='15', info=info)
    host.heartbeat['postgres'] = (1795252303 - 20.0, 'db1.example.com')
    report = run(host, tmp_path)
    assert report['status'] == 'ok' and report['backup_label'] == '20261121-091140F' and report['version'] == '15'
    assert [a[0] for a in host.argvs('pg_ctl')][0] == '/usr/lib/postgresql/15/bin/pg_ctl'
    assert host.argvs('pg_amcheck')[0][0] == '/usr/lib/postgresql/15/bin/pg_amcheck'
    assert by_label(report)['amcheck appdb']['status'] == 'pass'


def test_pg_amcheck_is_skipped_before_postgresql_14(tmp_path):
    host = fakes.DrillHost()
    host.settings['server_version_num'] = '130012'
    report = run(host, tmp_path)
    check = by_label(report)['amcheck appdb']
    assert check['status'] == 'skip' and 'PostgreSQL 14 or later (this is 13)' in check['detail']
    assert host.argvs('pg_amcheck') == []


# --- the heartbeat ----------------------------------------------------------------------------------------

def test_a_stale_heartbeat_fails(tmp_path):
    host = fakes.DrillHost()
    host.heartbeat['postgres'] = (fakes.NEWEST_STOP - 3600.0, 'db1.example.com')
    err = failed(host, tmp_path)
    assert 'heartbeat: the restored copy is stale' in err.msg and 'more than the allowed 5m 00s' in err.msg
    assert run(fakes_host_with_heartbeat_age(3600), tmp_path, heartbeat_max_age='2h')['status'] == 'ok'


def fakes_host_with_heartbeat_age(seconds):
    host = fakes.DrillHost()
    host.heartbeat['postgres'] = (fakes.NEWEST_STOP - float(seconds), 'db1.example.com')
    return host


def test_a_heartbeat_missing_from_the_copy_fails_when_production_has_one(tmp_path):
    host = fakes.DrillHost()
    host.heartbeat = {}
    err = failed(host, tmp_path)
    assert 'heartbeat: the heartbeat table public.pgops_heartbeat is missing from database postgres of the restored ' \
           'copy although production has it' in err.msg
    # the only questions asked of production: whether it has the table, and since when
    assert [s[2] for s in host.sql if s[0] == fakes.PROD_PORT] == [
        "SELECT to_regclass('public.pgops_heartbeat') IS NOT NULL",
        "SELECT extract(epoch FROM min(since))::float8 FROM public.pgops_heartbeat"]


def test_a_backup_older_than_the_heartbeat_writer_skips_the_heartbeat_check(tmp_path):
    host = fakes.DrillHost()
    host.heartbeat = {}
    host.production_heartbeat_since = fakes.NEWEST_STOP + 60.0
    report = run(host, tmp_path)
    check = [c for c in report['checks'] if c['name'] == 'heartbeat'][0]
    assert report['status'] == 'ok' and check['status'] == 'skip'
    assert 'before the heartbeat writer was installed on production' in check['detail']


def test_a_backup_newer_than_the_heartbeat_writer_without_the_table_fails(tmp_path):
    host = fakes.DrillHost()
    host.heartbeat = {}
    host.production_heartbeat_since = fakes.NEWEST_STOP - 60.0
    err = failed(host, tmp_path)
    assert 'is missing from database postgres of the restored copy although production has it' in err.msg


def test_without_a_heartbeat_writer_auto_skips_and_required_fails(tmp_path):
    host = fakes.DrillHost()
    host.heartbeat = {}
    host.production_heartbeat = False
    report = run(host, tmp_path)
    check = by_label(report)['heartbeat']
    assert check['status'] == 'skip' and 'installs the heartbeat writer' in check['detail']
    assert report['rpo_seconds'] is None
    host = fakes.DrillHost()
    host.heartbeat = {}
    host.production_heartbeat = False
    err = failed(host, tmp_path, heartbeat='required')
    assert 'is missing from database postgres' in err.msg
    host = fakes.DrillHost()
    report = run(host, tmp_path, heartbeat='off')
    assert by_label(report)['heartbeat']['status'] == 'skip'


def test_latest_replays_the_archive_and_measures_against_the_drill_start(tmp_path):
    host = fakes.DrillHost()
    host.server_log = ''  # checked through SQL only
    host.heartbeat['postgres'] = (fakes.NOW - 30.0, 'db1.example.com')
    report = run(host, tmp_path, target_type='latest')
    (restore,) = host.ran('pgbackrest', 'restore')
    assert '--type=default' in restore and '--set=%s' % fakes.NEWEST in restore
    check = by_label(report)['heartbeat']
    assert check['status'] == 'pass' and 'the start of the drill' in check['detail']


def test_a_time_target_restores_the_backup_before_it(tmp_path):
    host = fakes.DrillHost()
    host.server_log = ''
    host.heartbeat['postgres'] = (fakes.NEWEST_STOP - 10.0, 'db1.example.com')
    report = run(host, tmp_path, target_type='time', target='2026-11-21 09:25:00+00')
    assert report['backup_label'] == fakes.FIRST
    (restore,) = host.ran('pgbackrest', 'restore')
    assert '--type=time' in restore and '--target=2026-11-21 09:25:00.000000+00' in restore


# --- choosing the backup -----------------------------------------------------------------------------------

def test_a_chosen_set_and_repository_are_passed_to_pgbackrest(tmp_path):
    host = fakes.DrillHost()
    host.heartbeat['postgres'] = (fakes.FIRST_STOP - 10.0, 'db1.example.com')
    report = run(host, tmp_path, backup_set=fakes.FIRST, repo=1)
    (restore,) = host.ran('pgbackrest', 'restore')
    assert '--set=%s' % fakes.FIRST in restore and '--repo=1' in restore
    assert report['backup']['reason'] == 'requested'


def test_an_unknown_set_or_an_empty_stanza_is_a_failed_source(tmp_path):
    host = fakes.DrillHost()
    err = failed(host, tmp_path, backup_set='20990101-000000F')
    assert err.report['failed_checks'] == ['source'] and 'backup set 20990101-000000F is not in stanza main' in err.msg
    assert host.ran('pgbackrest', 'restore') == []
    host = fakes.DrillHost()
    host.info[0]['backup'] = []
    err = failed(host, tmp_path)
    assert 'stanza main has no backup of its current database to restore' in err.msg


def test_a_backup_flagged_with_errors_fails_the_source_check(tmp_path):
    host = fakes.DrillHost()
    host.info[0]['backup'][-1]['error'] = True
    err = failed(host, tmp_path)
    assert 'pgBackRest flagged this backup with errors' in err.msg


def test_too_little_space_is_refused_before_anything_is_written(tmp_path):
    host = fakes.DrillHost()
    host.free = 10 * 1024 * 1024
    err = failed(host, tmp_path)
    assert 'not enough free space' in err.msg and fakes.mutating(host) == []


def test_a_drill_that_would_eat_the_reserve_of_the_primary_is_refused_before_anything_is_written(tmp_path):
    host = fakes.DrillHost()
    host.free = 27 * 10 ** 9 + 100 * 1024 * 1024  # just above the default reserve (10% of 270 GB)
    err = failed(host, tmp_path)
    assert 'below the reserve of' in err.msg and 'the data directory of 17/main' in err.msg
    assert fakes.mutating(host) == [] and err.report['failed_checks'] == ['source']
    assert 'scratch_base_dir' in err.report['hint']
    host = fakes.DrillHost()
    host.free = 27 * 10 ** 9 + 100 * 1024 * 1024
    assert run(host, tmp_path, scratch_reserve='1G')['status'] == 'ok'  # a smaller reserve, by choice
    host = fakes.DrillHost()
    host.paths.add('/var/lib/postgresql/pgops-scratch')
    host.mounts['/var/lib/postgresql/pgops-scratch'] = ('tmpfs', 64 * 1024 ** 3, 60 * 1024 ** 3)
    host.free = 10 * 1024 * 1024  # production's disk is nearly full, the scratch disk is another one
    report = run(host, tmp_path)
    assert report['status'] == 'ok' and report['space']['shared_with'] == []


def test_the_reserve_setting_is_validated(tmp_path):
    with pytest.raises(EngineError) as err:
        Settings(source='pgbackrest', stanza='main', scratch_reserve='lots')
    assert "scratch reserve 'lots' is not a size" in err.value.msg
    assert Settings(source='pgbackrest', stanza='main', scratch_reserve='20%').reserve == ('percent', 20.0)


def test_a_drill_is_refused_while_a_recovery_holds_the_production_cluster(tmp_path):
    from ansible_collections.pgops.backup.plugins.module_utils import cluster_lock
    host = fakes.DrillHost()
    with cluster_lock.ClusterLock('17/main', job='pitr', lock_dir=cluster_lock.DEFAULT_LOCK_DIR):
        with pytest.raises(cluster_lock.ClusterBusy) as err:
            run(host, tmp_path)
    assert 'cluster 17/main is busy: pitr (pid %d' % os.getpid() in err.value.msg
    assert 'refusing to start restore drill pgbackrest' in err.value.msg and fakes.mutating(host) == []
    report = run(host, tmp_path)  # afterwards it runs, and holds the lock while it does
    assert report['status'] == 'ok' and report['cluster_lock']['cluster'] == '17/main'
    with cluster_lock.ClusterLock('17/main', job='pitr', lock_dir=cluster_lock.DEFAULT_LOCK_DIR):
        pass  # released


def test_the_drill_holds_the_cluster_lock_while_it_restores(tmp_path):
    from ansible_collections.pgops.backup.plugins.module_utils import cluster_lock
    host = fakes.DrillHost()
    seen = []

    def probe(argv, data):
        try:
            with cluster_lock.ClusterLock('17/main', job='pitr', lock_dir=cluster_lock.DEFAULT_LOCK_DIR):
                seen.append('free')
        except cluster_lock.ClusterBusy as exc:
            seen.append(exc.msg)
        return 0, '', ''
    real = host._pg_ctl
    host._pg_ctl = lambda argv, data: (probe(argv, data), real(argv, data))[1]
    run(host, tmp_path)
    assert seen and all('restore drill pgbackrest' in s for s in seen)


# --- check mode, leftovers, keeping a failed copy ---------------------------------------------------------------

def test_check_mode_returns_the_plan_and_changes_nothing(tmp_path):
    host = fakes.DrillHost()
    plan = drill(host, tmp_path).run(check_mode=True)
    assert plan['status'] == 'planned' and plan['backup_label'] == fakes.NEWEST
    assert plan['scratch']['port'] == 5433 and plan['scratch']['data_directory'] == SCRATCH
    assert 'heartbeat' in plan['checks'] and 'checksums' in plan['checks']
    assert plan['steps'][0].startswith('restore backup set %s of stanza main into scratch instance drill-pgbackrest'
                                       % fakes.NEWEST)
    assert fakes.mutating(host) == []
    assert not os.path.exists(str(tmp_path / 'records'))


def test_keep_failed_keeps_the_stopped_copy_and_the_next_drill_replaces_it(tmp_path):
    host = fakes.DrillHost()
    host.queries[ORDERS] = (0, fakes.rows(['1']))
    err = failed(host, tmp_path, keep_failed=True, sql_checks=[{'name': 'orders', 'query': ORDERS, 'expected': 2}])
    assert err.report['kept'] is True and err.report['scratch']['state'] == 'kept'
    assert SCRATCH in host.paths and MARKER in host.files and not host.running[SCRATCH]
    assert host.ran('rm', SCRATCH) == []
    report = run(host, tmp_path)
    assert report['status'] == 'ok'
    assert host.ran('rm', '-rf', SCRATCH) and SCRATCH not in host.paths


def test_a_directory_not_made_by_a_drill_is_never_touched(tmp_path):
    host = fakes.DrillHost()
    host.paths.add(SCRATCH)
    host.paths.add(MARKER)
    host.files[MARKER] = json.dumps({'name': 'drill-pgbackrest', 'purpose': 'pitr restore elsewhere', 'port': 5440})
    err = failed(host, tmp_path)
    assert 'was not made by a restore drill: refusing to touch it' in err.msg
    assert fakes.mutating(host) == []


def test_remove_kept_removes_only_a_drill_copy(tmp_path):
    host = fakes.DrillHost()
    host.queries[ORDERS] = (0, fakes.rows(['1']))
    failed(host, tmp_path, keep_failed=True, sql_checks=[{'name': 'orders', 'query': ORDERS, 'expected': 2}])
    assert drill(host, tmp_path).remove_kept() is True
    assert SCRATCH not in host.paths
    assert drill(host, tmp_path).remove_kept() is False


# --- settings ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('values, message', [
    ({'source': 'tape'}, 'source must be one of pgbackrest, pg_dump'),
    ({'source': 'pgbackrest'}, 'a pgbackrest drill needs the stanza'),
    ({'source': 'pgbackrest', 'stanza': 'main', 'name': 'Weekly Drill'}, "drill name 'Weekly Drill'"),
    ({'source': 'pgbackrest', 'stanza': 'main', 'heartbeat': 'maybe'}, 'heartbeat must be one of auto, required, off'),
    ({'source': 'pgbackrest', 'stanza': 'main', 'target_type': 'standby'}, 'target_type must be one of'),
    ({'source': 'pgbackrest', 'stanza': 'main', 'target_type': 'time'}, 'a time target needs a value'),
    ({'source': 'pg_dump', 'backup_set': 'x'}, 'backup_set, repo and targets are for the pgbackrest source'),
    ({'source': 'pgbackrest', 'stanza': 'main', 'colour': 'red'}, 'unknown restore drill setting(s): colour'),
    ({'source': 'pgbackrest', 'stanza': 'main', 'heartbeat_max_age': 'soon'}, "'soon' is not a duration"),
    ({'source': 'pgbackrest', 'stanza': 'main', 'sql_checks': [{'name': 'x', 'query': 'SELECT 1'}]},
     "sql check 'x' needs an expected result"),
    ({'source': 'pgbackrest', 'stanza': 'main', 'sql_checks': [{'name': 'x', 'query': 'SELECT 1', 'expected': 1,
                                                                'db': 'a'}]}, 'sql_checks[0] has unknown keys: db'),
])
def test_bad_settings_are_refused(values, message):
    with pytest.raises(EngineError) as err:
        Settings(**values)
    assert message in err.value.msg


def test_settings_defaults():
    s = Settings(source='pgbackrest', stanza='main')
    assert s.name == 'pgbackrest' and s.scratch_name == 'drill-pgbackrest' and s.record_job == 'restore_test-pgbackrest'
    assert s.heartbeat_max_age_seconds == 300 and s.target.kind == 'immediate'
    assert drill_mod.parse_age('2h') == 7200 and drill_mod.parse_age(0) is None and drill_mod.parse_age(90) == 90


@pytest.mark.parametrize('value, text', [
    (True, 't'), (False, 'f'), (None, ''), (1000, '1000'), (2.0, '2'), ('  abc ', 'abc'),
    ([1, 2], '1\n2'), ([['a', 1], ['b', None]], 'a|1\nb|'),
])
def test_expected_results_are_written_the_way_psql_prints_them(value, text):
    assert normalize_expected(value) == text


def test_a_lock_directory_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / 'not-a-dir').write_text('')
    clock = fakes.Clock()
    host = fakes.DrillHost()
    run_ = Drill(host.runner(), Settings(source='pgbackrest', stanza='main'), record_dir=str(tmp_path / 'records'),
                 clock=clock, sleep=clock.sleep, hostname='db1.example.com', lock_dir=str(tmp_path / 'not-a-dir' / 'x'))
    with pytest.raises(EngineError) as err:
        run_.run()
    assert 'cannot take the lock of cluster 17/main' in err.value.msg and 'host_tools' in err.value.hint
    assert fakes.mutating(host) == []


def test_a_stanza_name_from_a_drill_file_is_validated_like_a_flag():
    with pytest.raises(EngineError) as err:
        Settings(source='pgbackrest', stanza="ma'in")
    assert err.value.msg.startswith('invalid stanza name "ma\'in"') and err.value.code == 'stanza-name'
