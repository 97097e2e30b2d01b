# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guards around recovery (issue 12): the wrong host (a standby, not the stanza's primary, a
former primary under a standby rebuild), itself (the cluster lock, a run killed in the middle),
a data directory that cannot be moved aside, bad numbers and passwords in a conninfo. Every
refusal changes nothing on the host."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli, cli_pitr
from ansible_collections.pgops.backup.plugins.module_utils.cluster_lock import ClusterLock, lock_path
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.pitr import Target
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.plugins.module_utils.recovery import (
    Pitr, Refused, Request, conninfo_has_password)
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import (
    DATA, NOW, Clock, PitrHost, commit_line, fixture, paused_at)

T = '2026-11-21 09:29:42.318497+00'
LAST_US = 1795253382285200
ASIDE = DATA + '.pitr-20261121T093640Z'
DEAD_PID = 4194303 + 7  # above the kernel's largest pid: never alive


class Killed(BaseException):
    """kill -9: nothing of the engine's error handling runs (only `finally` blocks, which kill -9 skips too)."""


def new_host(log='server-log-time-paused-17.log', states=None):
    host = PitrHost()
    host.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
        781, '0/0D019300', '2026-11-21 09:35:00.000001')
    states = states if states is not None else [paused_at('0/B0093D8', LAST_US, 2)]

    def on_start(h):
        h.server_log = fixture(log)
        h.states = list(states)
        h.state = states[-1] if states else None
    host.on_start = on_start
    return host


def make(host, tmp_path, now=NOW, pg_cluster='main'):
    clock = Clock(now)
    return Pitr(PgBackRest(host.runner(), stanza='main'), pg_cluster=pg_cluster, record_dir=str(tmp_path / 'records'),
                registry_dir=str(tmp_path / 'points'), clock=clock, sleep=clock.sleep, hostname='db1.example',
                environ={'SUDO_USER': 'alice'}, lock_dir=str(tmp_path / 'locks'))


def audit_names(tmp_path):
    directory = tmp_path / 'records' / 'pitr-audit'
    return sorted(os.listdir(str(directory))) if directory.exists() else []


def refused(host, tmp_path, request, **kwargs):
    with pytest.raises(Refused) as caught:
        make(host, tmp_path, pg_cluster=host.cluster['name']).run(request, **kwargs)
    assert host.mutating() == [], 'a refusal changed the host'
    return caught.value


# --- 1. in-place PITR of a standby, or of a cluster that is not the stanza's primary --------------

def test_the_reported_case_latest_on_a_running_streaming_standby_is_refused(tmp_path):
    # pitr.yml with pitr_pg_cluster naming a running streaming standby and pitr_latest=true.
    host = new_host()
    host.cluster.update(name='replica', port=5433)
    host.in_recovery = True
    exc = refused(host, tmp_path, Request(Target('latest'), stop_cluster=True))
    assert exc.code == 'not-primary'
    assert exc.msg.startswith('refusing an in-place point-in-time recovery of 17/replica: it is running as a '
                              'standby (pg_is_in_recovery() is true)')
    assert 'two writable primaries' in exc.msg and 'corrupts its history' in exc.msg
    assert 'restore elsewhere' in exc.hint and 'allow_standby=true' in exc.hint and '--allow-standby' in exc.hint
    assert not host.ran('systemctl')
    assert audit_names(tmp_path)[0].endswith('-refused.json')


def test_a_stopped_standby_is_refused_by_its_standby_signal(tmp_path):
    host = new_host()
    host.running, host.cluster['status'] = False, 'down'
    host.paths.add(DATA + '/standby.signal')
    exc = refused(host, tmp_path, Request(Target('latest'), stop_cluster=True))
    assert 'it is a standby (standby.signal in %s)' % DATA in exc.msg


def test_a_stopped_cluster_last_in_recovery_is_refused_by_its_pg_control(tmp_path):
    host = new_host()
    host.running, host.cluster['status'] = False, 'down'
    host.controldata = host.controldata.replace('in production', 'shut down in recovery')
    exc = refused(host, tmp_path, Request(Target('latest')))
    assert 'it was last a standby (pg_control: "Database cluster state: shut down in recovery")' in exc.msg


@pytest.mark.parametrize('mode, command, words', [
    ('off', '', 'with archive_mode=off'),
    ('on', 'pgbackrest --stanza=other archive-push %p', 'archives into stanza other, not into stanza main'),
    ('on', 'cp %p /mnt/wal/%f', 'archives into no pgBackRest stanza'),
])
def test_a_primary_that_does_not_archive_into_the_stanza_is_not_its_primary(tmp_path, mode, command, words):
    host = new_host()
    host.archive_mode, host.archive_command = mode, command
    exc = refused(host, tmp_path, Request(Target('time', T), stop_cluster=True))
    assert words in exc.msg and exc.code == 'not-primary'


def test_allow_standby_says_what_happens_to_the_stanza_and_switches_archiving_off(tmp_path):
    host = new_host()
    host.in_recovery = True
    pitr = make(host, tmp_path)
    plan = pitr.run(Request(Target('time', T), stop_cluster=True, allow_standby=True), check_mode=True)['plan']
    assert plan['archiving_disabled'] is True
    assert '--archive-mode=off' in plan['restore_command']
    assert 'never archives into stanza main' in plan['stanza_effect']
    assert any('archive_mode=off' in w for w in plan['warnings'])
    assert any(s.startswith('write archive_mode=off for the recovered instance') for s in plan['steps'])
    result = make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True, allow_standby=True))
    assert result['archiving_disabled'] is True and '--archive-mode=off' in host.restored_argv
    assert any('never archives into stanza main' in w for w in result['warnings'])


def test_the_primary_of_the_stanza_is_restored_with_its_archiving(tmp_path):
    host = new_host()
    plan = make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True), check_mode=True)['plan']
    assert plan['archiving_disabled'] is False and '--archive-mode=off' not in plan['restore_command']


def test_allow_standby_is_for_in_place_recoveries():
    with pytest.raises(EngineError, match='allow_standby applies to in-place'):
        Request(Target('latest'), destination='elsewhere', allow_standby=True)


# --- 2. standby rebuild over a stopped former primary ----------------------------------------------

def stopped_former_primary(state='shut down'):
    host = new_host('server-log-standby-streaming-17.log', [['t', '0/E000000', None, 'f', 5, 'streaming']])
    host.running, host.cluster['status'] = False, 'down'
    host.controldata = host.controldata.replace('in production', state)
    return host


@pytest.mark.parametrize('state', ['shut down', 'in production'])
def test_standby_rebuild_of_a_stopped_former_primary_is_refused(tmp_path, state):
    host = stopped_former_primary(state)
    exc = refused(host, tmp_path, Request(Target('standby'), delta=True))
    assert exc.code == 'former-primary'
    assert 'pg_control says "Database cluster state: %s"' % state in exc.msg
    assert 'would be overwritten' in exc.msg and 'force_rebuild=true' in exc.hint and '--force-rebuild' in exc.hint


def test_force_rebuild_rebuilds_a_former_primary_and_says_so(tmp_path):
    host = stopped_former_primary()
    result = make(host, tmp_path).run(Request(Target('standby'), delta=True, force_rebuild=True))
    assert result['standby']['status'] == 'streaming'
    assert any('force_rebuild' in w for w in result['plan']['warnings'])


def test_force_rebuild_is_for_standby_rebuilds():
    with pytest.raises(EngineError, match='force_rebuild applies to standby rebuilds'):
        Request(Target('latest'), force_rebuild=True)


# --- 3. one lock per cluster -------------------------------------------------------------------------

def test_a_second_recovery_is_refused_naming_the_first(tmp_path):
    host = new_host()
    first = ClusterLock('17/main', job='in-place PITR of stanza main', lock_dir=str(tmp_path / 'locks'))
    with first:
        exc = refused(host, tmp_path, Request(Target('time', T), stop_cluster=True))
    assert exc.code == 'locked'
    assert exc.msg.startswith('cluster 17/main is busy: in-place PITR of stanza main (pid %d, started ' % os.getpid())
    assert 'refusing to start in-place PITR of stanza main' in exc.msg
    assert not host.ran('pgbackrest')  # refused before preflight
    assert audit_names(tmp_path)[0].endswith('-refused.json')


def test_standby_rebuild_takes_the_same_lock(tmp_path):
    host = stopped_former_primary('shut down in recovery')
    with ClusterLock('17/main', job='restore drill', lock_dir=str(tmp_path / 'locks')):
        exc = refused(host, tmp_path, Request(Target('standby'), delta=True))
    assert 'restore drill (pid' in exc.msg and 'refusing to start standby rebuild' in exc.msg


def test_the_lock_is_held_during_the_run_and_released_after(tmp_path):
    host = new_host()
    seen = {}
    start = host.on_start

    def during(h):
        seen['holder'] = json.loads(open(lock_path('17/main', str(tmp_path / 'locks'))).read())
        start(h)
    host.on_start = during
    make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    assert seen['holder']['job'] == 'in-place PITR of stanza main' and not seen['holder'].get('released')
    assert seen['holder']['stanza'] == 'main' and seen['holder']['user']
    after = json.loads(open(lock_path('17/main', str(tmp_path / 'locks'))).read())
    assert after['released'] is True


def test_a_stale_lock_is_reported_and_cleared(tmp_path):
    os.makedirs(str(tmp_path / 'locks'))
    with open(lock_path('17/main', str(tmp_path / 'locks')), 'w') as handle:
        json.dump({'job': 'in-place PITR of stanza main', 'pid': DEAD_PID, 'user': 'bob',
                   'started_at': '2026-11-21T09:00:00Z'}, handle)
    host = new_host()
    result = make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    assert result['stale_lock']['pid'] == DEAD_PID and result['stale_lock']['user'] == 'bob'
    assert any(w.startswith('a stale lock of cluster 17/main was found and cleared: in-place PITR of stanza main '
                            '(pid %d, started 2026-11-21T09:00:00Z by bob) did not finish' % DEAD_PID)
               for w in result['warnings'])


def test_plans_and_restores_elsewhere_take_no_lock(tmp_path):
    host = new_host()
    with ClusterLock('17/main', job='in-place PITR of stanza main', lock_dir=str(tmp_path / 'locks')):
        result = make(host, tmp_path).run(Request(Target('time', T)), plan_only=True)
    assert result['status'] == 'planned'
    assert any(w.startswith('a recovery of this cluster is running now: in-place PITR of stanza main (pid %d'
                            % os.getpid()) and 'is refused until it ends' in w for w in result['plan']['warnings'])


# --- 4. the audit record at the first change; a killed run is found by the next ----------------

def kill_during_recovery(host, tmp_path):
    """A run killed after the data directory was moved aside and the server started."""
    def die(h):
        h.in_recovery = True          # the server keeps running, paused in recovery
        h.dirs[DATA] = ['PG_VERSION', 'base', 'global', 'pg_wal', 'recovery.signal']
        raise Killed()
    host.on_start = die
    with pytest.raises(Killed):
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True, requested_by='alice'))


def test_the_record_is_written_at_the_first_change_and_says_where_the_data_directory_went(tmp_path):
    host = new_host()
    kill_during_recovery(host, tmp_path)
    names = audit_names(tmp_path)
    assert names == ['pitr-restore-main-20261121T093640Z-running.json']
    record = json.loads((tmp_path / 'records' / 'pitr-audit' / names[0]).read_text())
    assert record['status'] == 'running' and record['stage'] == 'recovering (server started)'
    assert record['moved_aside_to'] == ASIDE and record['data_directory'] == DATA
    assert record['pid'] == os.getpid() and record['requested_by'] == 'alice'
    assert record['target']['type'] == 'time'


def test_a_run_killed_while_stopping_the_cluster_leaves_its_record(tmp_path):
    host = new_host()

    def die(*args):
        raise Killed()
    host.check_hook = None
    host._systemctl = die
    with pytest.raises(Killed):
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    # Killed while stopping the cluster: the record was written just before.
    record = json.loads((tmp_path / 'records' / 'pitr-audit' / audit_names(tmp_path)[0]).read_text())
    assert record['stage'] == 'stopping the cluster' and record['moved_aside_to'] is None


def test_the_next_plan_reports_the_killed_run_and_where_the_data_directory_is(tmp_path):
    host = new_host()
    kill_during_recovery(host, tmp_path)
    host.calls = []
    plan = make(host, tmp_path, now=NOW + 120).run(Request(Target('time', T), stop_cluster=True), plan_only=True)['plan']
    (run,) = plan['interrupted_runs']
    assert run['moved_aside_to'] == ASIDE and run['stage'] == 'recovering (server started)'
    assert run['pid'] == os.getpid() and run['requested_by'] == 'alice'
    warning = [w for w in plan['warnings'] if w.startswith('an earlier in-place PITR')][0]
    assert 'did not finish' in warning
    assert 'the data directory as it was before that run is at %s (moved aside, intact)' % ASIDE in warning
    # The cluster in recovery is the killed run's unfinished restore, not a standby: not refused.
    assert any('left so by the unfinished run above' in w for w in plan['warnings'])
    assert host.mutating() == []


def test_after_a_kill_during_the_restore_wal_is_fetched_with_the_pg_control_moved_aside(tmp_path):
    # pgBackRest's archive-get reads pg_control of pg1-path: the unfinished restore has none yet.
    host = new_host()
    kill_during_recovery(host, tmp_path)
    host.in_recovery, host.running, host.cluster['status'] = False, False, 'down'
    host.paths.discard(DATA + '/global/pg_control')
    host.paths.add(ASIDE + '/global/pg_control')
    host.calls = []
    plan = make(host, tmp_path, now=NOW + 120).preflight(Request(Target('latest')))
    gets = host.ran('archive-get')
    assert gets and all('--pg1-path=%s' % ASIDE in c['argv'] for c in gets)
    assert any(c['name'] == 'pg_control' and ASIDE in c['detail'] for c in plan['checks'])


def test_wal_is_fetched_with_the_cluster_pg_control_normally(tmp_path):
    host = new_host()
    make(host, tmp_path).preflight(Request(Target('latest')))
    assert host.ran('archive-get') and not host.ran('archive-get', '--pg1-path')


def test_a_run_killed_inside_install_is_repaired(tmp_path):
    # Killed between the rename and `install -d` finishing: the new data directory may be owned by root.
    host = new_host()
    real_install = host._install

    def die(argv, env, data):
        real_install(argv, env, data)
        raise Killed()
    host._install = die
    with pytest.raises(Killed):
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    del host._install
    host.calls = []
    result = make(host, tmp_path, now=NOW + 120).run(Request(Target('time', T), stop_cluster=True))
    assert result['status'] == 'ok' and result['plan']['data_directory']['mode'] == 'fresh'
    assert result['interrupted_runs'][0]['moved_aside_to'] == ASIDE
    commands = host.commands()
    install = commands.index('install -d -m 0700 -o postgres -g postgres %s' % DATA)
    assert install < [i for i, c in enumerate(commands) if c.endswith(' restore')][0]
    assert [c['user'] for c in host.ran('ls -A -1 %s' % DATA)] == [None]  # read as root


def test_the_cli_plan_prints_the_unfinished_run(tmp_path, monkeypatch, capsys):
    host = new_host()
    kill_during_recovery(host, tmp_path)
    monkeypatch.setattr(cli_pitr, 'Runner',
                        lambda run_as=None, stream=None: Runner(run=host, which=host.which, run_as=run_as))
    assert cli.main(['--record-dir', str(tmp_path / 'records'), 'pitr', 'plan', '--stanza', 'main', '--time', T,
                     '--lock-dir', str(tmp_path / 'locks'), '--registry-dir', str(tmp_path / 'points')]) == 0
    out = capsys.readouterr().out
    assert 'UNFINISHED: run of ' in out and 'data directory before it at %s' % ASIDE in out


def test_a_normal_run_after_the_kill_repairs_and_keeps_both_directories(tmp_path):
    host = new_host()
    kill_during_recovery(host, tmp_path)
    host.on_start = new_host().on_start
    host.in_recovery = False
    result = make(host, tmp_path, now=NOW + 120).run(Request(Target('time', T), stop_cluster=True))
    assert result['status'] == 'ok' and result['promoted'] is True
    second_aside = DATA + '.pitr-20261121T093840Z'
    assert result['moved_aside_to'] == second_aside and ASIDE in host.paths
    assert result['interrupted_runs'][0]['moved_aside_to'] == ASIDE
    assert any(ASIDE in w for w in result['warnings'])
    names = audit_names(tmp_path)
    assert names == ['pitr-restore-main-20261121T093640Z-interrupted.json', 'pitr-restore-main-20261121T093840Z-ok.json']
    old = json.loads((tmp_path / 'records' / 'pitr-audit' / names[0]).read_text())
    assert old['status'] == 'interrupted' and old['superseded_by'].endswith('20261121T093840Z-running.json')
    # Later plans no longer report it: this run took it over.
    assert make(host, tmp_path, now=NOW + 300).preflight(Request(Target('time', T)))['interrupted_runs'] == []


def test_a_run_in_progress_is_reported_as_running_not_as_killed(tmp_path):
    host = new_host()
    kill_during_recovery(host, tmp_path)
    with ClusterLock('17/main', job='in-place PITR of stanza main', lock_dir=str(tmp_path / 'locks')):
        plan = make(host, tmp_path, now=NOW + 60).preflight(Request(Target('time', T), allow_standby=True))
    assert plan['interrupted_runs'] == []
    assert any(w.startswith('a recovery of this cluster is running now: in-place PITR') for w in plan['warnings'])


def test_a_finished_run_leaves_no_running_record(tmp_path):
    host = new_host()
    make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    assert audit_names(tmp_path) == ['pitr-restore-main-20261121T093640Z-ok.json']


# --- 5. a data directory that cannot be moved aside ------------------------------------------------

def test_a_data_directory_that_is_a_mount_point_is_refused_before_the_stop(tmp_path):
    host = new_host()
    host.mounts.add(DATA)
    exc = refused(host, tmp_path, Request(Target('time', T), stop_cluster=True))
    assert exc.code == 'mount-point'
    assert exc.msg.startswith('the data directory %s is a mount point: it cannot be renamed aside' % DATA)
    assert 'nothing was stopped' in exc.msg
    assert 'restore elsewhere' in exc.hint and 'mount a fresh empty volume at %s' % DATA in exc.hint
    assert not host.ran('systemctl') and not host.ran('mv')


def test_a_mount_point_is_fine_for_delta(tmp_path):
    host = new_host()
    host.mounts.add(DATA)
    assert make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True, delta=True))['status'] == 'ok'


def test_pg_wal_linked_to_another_file_system_is_refused_before_the_stop(tmp_path):
    host = new_host()
    host.links[DATA + '/pg_wal'] = '/srv/wal/17-main'
    exc = refused(host, tmp_path, Request(Target('time', T), stop_cluster=True))
    assert exc.code == 'wal-link' and 'symbolic link to /srv/wal/17-main' in exc.msg
    assert 'restore elsewhere' in exc.hint


# --- 6. numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize('value', ['\u00b2', 'abc', '-1', '\u0663', '1e3', '1 2', '99999999999', '2'])
def test_bad_transaction_ids_are_clear_errors(value):
    with pytest.raises(EngineError) as caught:
        Target('xid', value)
    assert 'is not a transaction id: give a number from 3 to 4294967295' in caught.value.msg


@pytest.mark.parametrize('value', ['\u00b2', 'abc', '-1', '0', '\u0663', '4294967296'])
def test_bad_timelines_are_clear_errors(value):
    with pytest.raises(EngineError) as caught:
        Target('latest', timeline=value)
    assert 'target timeline must be latest, current or a timeline number from 1 to 4294967295' in caught.value.msg


def test_good_timelines():
    assert Target('latest', timeline=' 03 ').timeline == '3'
    assert Target('latest', timeline='Latest').timeline == 'latest'


@pytest.mark.parametrize('name, value', [('timeout', 'abc'), ('timeout', '\u00b2'), ('wal_scan_segments', -1),
                                         ('repo', 'x'), ('scratch_port', '5433a'), ('timeout', True)])
def test_bad_request_numbers_are_clear_errors(name, value):
    with pytest.raises(EngineError) as caught:
        Request(Target('latest'), **{name: value})
    assert caught.value.msg.startswith('%s must be a whole number from 1 up' % name)


def test_the_cli_reports_a_bad_xid_without_a_traceback(tmp_path, monkeypatch, capsys):
    host = new_host()
    monkeypatch.setattr(cli_pitr, 'Runner', lambda run_as=None, stream=None: Runner(run=host, which=host.which))
    assert cli.main(['--record-dir', str(tmp_path), 'pitr', 'plan', '--stanza', 'main', '--xid', '\u00b2']) == 1
    err = capsys.readouterr().err
    assert "REFUSED: '\u00b2' is not a transaction id" in err and 'Traceback' not in err


# --- 7. passwords in primary_conninfo --------------------------------------------------------------

SECRET = 's3cret'


@pytest.mark.parametrize('conninfo', [
    'host=db1 user=rep password=s3cret',
    "host=db1 PASSWORD = 's3cret'",
    'sslpassword=s3cret host=db1 sslkey=/k',
    'postgresql://rep:s3cret@db1/postgres',
    'postgres://rep:s3cret@db1:5432,db2:5432/postgres',
    'postgresql://db1/postgres?user=rep&password=s3cret',
    'postgresql://db1?sslpassword=s3cret',
    'postgresql://db1?pass%77ord=s3cret',
])
def test_a_password_in_primary_conninfo_is_refused_without_repeating_it(tmp_path, conninfo):
    assert conninfo_has_password(conninfo)
    with pytest.raises(EngineError) as caught:
        Request(Target('standby'), primary_conninfo=conninfo)
    assert 'contains a password' in caught.value.msg
    assert SECRET not in caught.value.full_message()
    assert '.pgpass' in caught.value.hint and 'passfile=' in caught.value.hint


@pytest.mark.parametrize('conninfo', [
    'host=db1 user=rep application_name=db2',
    'host=db1 user=rep passfile=/var/lib/postgresql/.pgpass-rep',
    'postgresql://rep@db1:5432/postgres?application_name=db2',
])
def test_a_conninfo_without_a_password_is_accepted(conninfo):
    assert not conninfo_has_password(conninfo)
    assert Request(Target('standby'), primary_conninfo=conninfo).primary_conninfo == conninfo


def test_the_cli_refuses_a_password_and_never_prints_it(tmp_path, monkeypatch, capsys):
    host = new_host()
    monkeypatch.setattr(cli_pitr, 'Runner', lambda run_as=None, stream=None: Runner(run=host, which=host.which))
    assert cli.main(['--json', '--record-dir', str(tmp_path), 'pitr', 'restore', '--stanza', 'main', '--standby',
                     '--primary-conninfo', 'postgresql://rep:s3cret@db1', '--confirm', 'x']) == 1
    captured = capsys.readouterr()
    assert 'contains a password' in captured.err and SECRET not in captured.err + captured.out
    assert host.calls == []


def test_the_module_option_is_no_log():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins', 'modules',
                        'pitr_restore.py')
    with open(path) as handle:
        assert "primary_conninfo=dict(type='str', no_log=True)" in handle.read()


def test_the_cli_refuses_a_standby_and_allows_it_with_allow_standby(tmp_path, monkeypatch, capsys):
    host = new_host()
    host.in_recovery = True
    monkeypatch.setattr(cli_pitr, 'Runner', lambda run_as=None, stream=None: Runner(run=host, which=host.which))
    args = ['--record-dir', str(tmp_path), 'pitr', 'plan', '--stanza', 'main', '--time', T,
            '--lock-dir', str(tmp_path / 'locks')]
    assert cli.main(args) == 1
    assert 'REFUSED: refusing an in-place point-in-time recovery of 17/main' in capsys.readouterr().err
    assert cli.main(args + ['--allow-standby']) == 0
    out = capsys.readouterr().out
    assert 'WARNING: 17/main is not the primary of stanza main (it is running as a standby' in out and '--archive-mode=off' in out


def test_a_cluster_that_does_not_stop_fails_with_the_data_directory_untouched(tmp_path):
    host = new_host()
    answer = host._systemctl

    def stop_hangs(argv, env, data):
        if 'stop' in argv:
            return 0, '', ''  # the stop was asked for; the server goes on running
        return answer(argv, env, data)
    host._systemctl = stop_hangs
    with pytest.raises(EngineError) as err:
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    assert 'PostgreSQL did not stop within 300 s' in err.value.msg
    assert 'nothing was restored and %s is untouched' % DATA in err.value.hint
    assert not [a for a in host.argvs if a[0].endswith('mv') or 'restore' in a]
