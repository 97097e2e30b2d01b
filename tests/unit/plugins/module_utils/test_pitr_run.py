# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole recoveries against the fake host: the order of the steps, pause-verify-promote, what is
kept and what happens when recovery goes wrong, standby rebuilds, and the audit trail."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.pitr import Target
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.recovery import Pitr, Refused, Request
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import (
    DATA, NOW, SECOND, Clock, PitrHost, commit_line, fixture, paused_at)

T = '2026-11-21 09:29:42.318497+00'
ASIDE = DATA + '.pitr-20261121T093640Z'
LAST_US = 1795253382285200  # 2026-11-21 09:29:42.2852, the last commit before T


def host_for(log, states, final=None):
    host = PitrHost()
    host.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
        781, '0/0D019300', '2026-11-21 09:35:00.000001')

    def on_start(h):
        h.server_log = fixture(log)
        h.states = list(states)
        h.state = final if final is not None else (states[-1] if states else None)
    host.on_start = on_start
    return host


def make(host, tmp_path, **kwargs):
    clock = Clock(NOW)
    pgbr = PgBackRest(host.runner(), stanza='main')
    pitr = Pitr(pgbr, record_dir=str(tmp_path / 'records'), registry_dir=str(tmp_path / 'points'), clock=clock,
                sleep=clock.sleep, hostname='db1.example', environ={'SUDO_USER': 'alice'},
                lock_dir=str(tmp_path / 'locks'), **kwargs)
    return pitr


def audit(tmp_path):
    directory = tmp_path / 'records' / 'pitr-audit'
    files = sorted(os.listdir(str(directory))) if directory.exists() else []
    return [json.loads((directory / f).read_text()) for f in files], files


def test_in_place_recovery_to_a_time(tmp_path):
    host = host_for('server-log-time-paused-17.log', [None, None, paused_at('0/B0093D8', LAST_US, 2)])
    result = make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True, reason='INC-1'))
    order = [c for c in host.commands() if c.split()[0] in ('systemctl', 'mv', 'install') or ' restore' in c
             or 'pg_promote' in c or c.endswith('ALTER SYSTEM RESET recovery_target_time')]
    assert [o.split()[0] if not o.startswith('/usr/bin/pgbackrest') else 'restore' for o in order] == [
        'systemctl', 'mv', 'install', 'restore', 'systemctl', '/usr/bin/psql', '/usr/bin/psql']
    assert order[0] == 'systemctl stop postgresql@17-main.service'
    assert order[1] == 'mv -T -- %s %s' % (DATA, ASIDE)
    assert order[2] == 'install -d -m 0700 -o postgres -g postgres %s' % DATA
    assert order[4] == 'systemctl start --no-block postgresql@17-main.service'
    assert '--set=%s' % SECOND in order[3] and '--target-action=pause' in order[3]
    # pgBackRest, psql and pg_ctl run as postgres; systemctl, mv and install as root.
    users = dict((' '.join(c['argv'][:2]), c['user']) for c in host.calls)
    assert users['systemctl stop'] is None and users['mv -T'] is None
    assert all(c['user'] == 'postgres' for c in host.ran('/usr/bin/pgbackrest'))
    assert result['status'] == 'ok' and result['promoted'] is True
    assert result['moved_aside_to'] == ASIDE and result['data_directory'] == DATA
    assert result['verification']['verified']
    assert result['recovered_to'] == '2026-11-21T09:29:42.285200Z'
    assert result['timeline'] == 6 and result['recovery_end_lsn'] == '0/B0093D8'
    assert 'recovery_target_time' in result['reset_settings']
    assert set(result['durations']) >= {'preflight', 'stop', 'move_aside', 'restore', 'recovery', 'verify',
                                        'promote', 'total'}
    records, names = audit(tmp_path)
    assert names == ['pitr-restore-main-20261121T093640Z-ok.json'] or names[0].endswith('-ok.json')
    record = records[0]
    assert record['status'] == 'ok' and record['requested_by'] == 'alice' and record['reason'] == 'INC-1'
    assert record['moved_aside_to'] == ASIDE and record['backup_set'] == SECOND
    assert record['target']['value'] == T and record['host'] == 'db1.example'
    assert json.loads((tmp_path / 'records' / 'pitr-restore-main.json').read_text())['status'] == 'ok'
    assert host.journal[-1].startswith('pitr ok: stanza=main host=db1.example by=alice target=time')


def test_a_running_cluster_is_refused_without_stop_cluster(tmp_path):
    host = host_for('server-log-time-paused-17.log', [])
    with pytest.raises(Refused) as caught:
        make(host, tmp_path).run(Request(Target('time', T)))
    assert 'refusing to restore over it' in caught.value.msg and 'stop_cluster=true' in caught.value.hint
    assert host.mutating() == []
    records, names = audit(tmp_path)
    assert records[0]['status'] == 'refused' and names[0].endswith('-refused.json')
    assert host.journal[-1].startswith('pitr refused:')


def test_check_mode_changes_nothing_and_writes_nothing(tmp_path):
    host = host_for('server-log-time-paused-17.log', [])
    result = make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True), check_mode=True)
    assert result['changed'] and result['status'] == 'planned'
    assert result['plan']['backup_set']['label'] == SECOND
    assert host.mutating() == [] and not host.ran('logger')
    assert not (tmp_path / 'records').exists()


def test_plan_only_records_the_attempt(tmp_path):
    host = host_for('server-log-time-paused-17.log', [])
    result = make(host, tmp_path).run(Request(Target('time', T)), plan_only=True)
    assert result['changed'] is False and result['record'].endswith('-planned.json')
    assert host.mutating() == []


def test_the_wal_switch_runs_before_anything_is_stopped(tmp_path):
    host = host_for('server-log-time-paused-17.log', [paused_at('0/B0093D8', LAST_US, 2)])
    host.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
        781, '0/0D019300', '2026-11-21 09:30:00')

    def archived(h):
        h.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
            782, '0/0D019400', '2026-11-21 09:36:30')
    host.check_hook = archived
    target = '2026-11-21 09:32:00+00'
    with pytest.raises(EngineError):
        # The fake's log says the recovery stopped at 09:29:43, not after 09:32: verification refuses to promote.
        make(host, tmp_path).run(Request(Target('time', target), stop_cluster=True))
    commands = host.commands()
    check = [i for i, c in enumerate(commands) if c.endswith(' check')]
    stop = [i for i, c in enumerate(commands) if c.startswith('systemctl stop')]
    assert check and stop and check[0] < stop[0]
    assert not host.ran('pg_promote')


def test_a_recovery_that_stopped_elsewhere_is_not_promoted(tmp_path):
    host = host_for('server-log-time-paused-17.log', [paused_at('0/B0093D8', LAST_US, 2)])
    with pytest.raises(EngineError) as caught:
        make(host, tmp_path).run(Request(Target('time', '2026-11-21 09:29:42.0+00'), stop_cluster=True))
    assert 'did NOT verifiably stop at the target' in caught.value.msg
    assert 'left paused in recovery and was not promoted' in caught.value.msg
    assert not host.ran('pg_promote')
    assert 'intact at %s' % ASIDE in caught.value.hint and 'mv %s %s' % (ASIDE, DATA) in caught.value.hint
    records, names = audit(tmp_path)
    assert records[0]['status'] == 'failed' and records[0]['moved_aside_to'] == ASIDE


def test_a_target_postgresql_could_not_reach_fails_with_the_server_log(tmp_path):
    host = host_for('server-log-target-not-reached-17.log', [None])

    def start_then_die(h):
        h.server_log = fixture('server-log-target-not-reached-17.log')
        h.states, h.state = [], None
        h.running = False
    host.on_start = start_then_die
    with pytest.raises(EngineError) as caught:
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    assert caught.value.msg == ('PostgreSQL stopped during recovery: recovery ended before configured recovery target '
                                'was reached')
    assert 'is not in the archive' in caught.value.hint and ASIDE in caught.value.hint


def test_recovery_that_never_reaches_its_target_times_out(tmp_path):
    host = host_for('server-log-time-paused-17.log', [None], final=None)
    host.on_start = lambda h: setattr(h, 'server_log', '')
    with pytest.raises(EngineError) as caught:
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True, timeout=30))
    assert 'within 30 s' in caught.value.msg


def test_pause_action_is_verified_and_left_paused(tmp_path):
    host = host_for('server-log-xid-exclusive-paused-17.log', [paused_at('0/D018DA0', None, 3)])
    host.waldump[('00000003000000000000000D', 'xid=777')] = fixture('waldump-xid-777-00000003000000000000000D.out')
    result = make(host, tmp_path).run(Request(Target('xid', '777', inclusive=False, action='pause', timeline='3'),
                                              stop_cluster=True))
    assert result['promoted'] is False and result['in_recovery'] is True
    assert not host.ran('pg_promote')
    assert result['verification']['evidence'] == ['stopped before the commit of transaction 777']


def test_delta_keeps_nothing_aside(tmp_path):
    host = host_for('server-log-time-paused-17.log', [paused_at('0/B0093D8', LAST_US, 2)])
    result = make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True, delta=True))
    assert not host.ran('mv') and result['moved_aside_to'] is None
    assert '--delta' in host.restored_argv


def test_a_failed_restore_leaves_the_old_directory_aside_and_says_how_to_go_back(tmp_path):
    host = host_for('server-log-time-paused-17.log', [])
    host.restore_rc = 40
    with pytest.raises(EngineError) as caught:
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    assert caught.value.msg.startswith('pgbackrest restore failed with pgBackRest error [040]')
    assert 'systemctl stop postgresql@17-main.service; mv %s %s.failed-restore; mv %s %s' % (
        DATA, DATA, ASIDE, DATA) in caught.value.hint


def test_standby_rebuild_streams(tmp_path):
    host = host_for('server-log-standby-streaming-17.log', [['t', '0/E000000', None, 'f', 5, 'streaming']])
    host.running = False
    host.cluster['status'] = 'down'
    host.paths.add(DATA + '/standby.signal')
    result = make(host, tmp_path).run(Request(Target('standby'), delta=True,
                                              primary_conninfo='host=db1 user=replicator'))
    argv = host.restored_argv
    assert '--type=standby' in argv and '--delta' in argv
    assert '--recovery-option=primary_conninfo=host=db1 user=replicator' in argv
    assert not any(a.startswith('--target-action') for a in argv)
    assert result['standby']['status'] == 'streaming' and result['promoted'] is False


def test_standby_replaying_from_the_archive_only(tmp_path):
    host = host_for('server-log-name-paused-17.log', [['t', '0/D000000', None, 'f', 5, '']])
    host.running = False
    host.cluster['status'] = 'down'
    host.controldata = host.controldata.replace('in production', 'shut down in recovery')
    result = make(host, tmp_path).run(Request(Target('standby'), delta=True))
    assert result['standby']['status'] == 'replaying' and result['standby']['restored_wal_files'] > 0


def test_elsewhere_restores_into_a_scratch_instance_without_touching_the_cluster(tmp_path):
    host = host_for('server-log-time-paused-17.log', [paused_at('0/B0093D8', LAST_US, 2)])
    result = make(host, tmp_path).run(Request(Target('time', T), destination='elsewhere', scratch_name='forensics'))
    scratch = result['scratch']
    assert scratch['port'] == 5433 and scratch['data_directory'] == '/var/lib/postgresql/pgops-scratch/forensics'
    assert result['archive_mode'] == 'off' and result['promoted'] is True
    assert not host.ran('systemctl') and not host.ran('mv ')
    argv = host.restored_argv
    assert '--archive-mode=off' in argv and '--pg1-path=/var/lib/postgresql/pgops-scratch/forensics' in argv
    start = host.ran('pg_ctl', 'start')[0]['argv']
    assert '-c archive_mode=off' in start[start.index('-o') + 1]
    assert result['plan']['data_directory']['mode'] == 'scratch'


def test_each_archived_file_is_fetched_once_per_recovery(tmp_path):
    host = host_for('server-log-time-paused-17.log', [None, None, paused_at('0/B0093D8', LAST_US, 2)])
    make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True, reason='INC-1'))
    fetched = [c.split()[-2] for c in host.commands() if ' archive-get ' in c]
    assert fetched and len(fetched) == len(set(fetched)), fetched
