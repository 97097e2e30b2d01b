# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight against a fake host (process boundary only): the window, the backup set, WAL fetch and
continuity, the refusals, and that preflight never changes anything."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.pitr import Target
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.recovery import Pitr, Refused, Request
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import (
    DATA, FIRST, SECOND, SYSTEM_ID, TMP, Clock, PitrHost, commit_line, fixture)

T = '2026-11-21 09:29:42.318497+00'


def make(host=None, tmp_path=None, **kwargs):
    host = host or PitrHost()
    host.waldump.setdefault(('00000005000000000000000D', 'Transaction'),
                            commit_line(781, '0/0D019300', '2026-11-21 09:35:00.000001'))
    runner = host.runner()
    pgbr = PgBackRest(runner, stanza='main')
    clock = Clock()
    pitr = Pitr(pgbr, record_dir=str(tmp_path / 'records') if tmp_path else None,
                registry_dir=str(tmp_path / 'points') if tmp_path else None, clock=clock, sleep=clock.sleep,
                hostname='db1.example', **kwargs)
    return pitr, host


def test_time_target_plan(tmp_path):
    pitr, host = make(tmp_path=tmp_path)
    plan = pitr.preflight(Request(Target('time', T)))
    assert plan['backup_set']['label'] == SECOND
    assert plan['backup_set']['reason'] == 'newest backup ending before the target'
    assert plan['timeline'] == 5
    assert plan['window']['from_backup'] == FIRST
    assert plan['window']['to_time'] == '2026-11-21T09:35:00.000001Z'
    assert plan['wal_switch'] == {'needed': False, 'reason': None}
    assert plan['stop_required'] is True
    assert plan['data_directory']['mode'] == 'move_aside'
    assert plan['data_directory']['aside_path'] == DATA + '.pitr-20261121T093640Z'
    argv = plan['restore_command']
    assert argv[:2] == ['/usr/bin/pgbackrest', '--stanza=main']
    assert argv[-1] == 'restore'
    assert '--set=%s' % SECOND in argv and '--pg1-path=%s' % DATA in argv
    assert '--type=time' in argv and '--target=%s' % T in argv
    # Paused at the target for verification; promoted only afterwards.
    assert '--target-action=pause' in argv and plan['recovery_target_action'] == 'pause'
    names = [c['name'] for c in plan['checks']]
    assert names == ['versions', 'cluster', 'window', 'backup_set', 'wal_fetch', 'wal_continuity', 'free_space']
    assert 'every segment from 00000002000000000000000A to 00000005000000000000000D is archived' in \
        plan['checks'][5]['detail']
    assert any(s.startswith('move %s to %s' % (DATA, DATA + '.pitr-')) for s in plan['steps'])
    assert host.mutating() == []


def test_preflight_fetches_wal_into_a_private_directory_and_cleans_up():
    pitr, host = make()
    pitr.preflight(Request(Target('time', T)))
    gets = host.ran('archive-get')
    assert gets and all('--no-archive-async' in c['argv'] for c in gets)
    assert all(c['argv'][-1].startswith(TMP + '/') for c in gets)
    assert all(c['user'] in ('postgres', None) for c in gets)
    assert host.ran('rm', '-rf', TMP)
    dumps = host.ran('pg_waldump')
    assert dumps and all(c['env']['TZ'] == 'UTC' for c in dumps)


def test_target_before_the_oldest_backup_is_refused_with_the_window():
    pitr, host = make()
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', '2026-11-21 09:00:00+00')))
    assert caught.value.code == 'before-window'
    assert 'recoverable window: from 2026-11-21T09:20:09.000000Z' in caught.value.msg
    assert host.mutating() == []


def test_target_in_the_future_is_refused():
    pitr, host = make()
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', '2026-11-21 10:40:00+00')))
    assert caught.value.code == 'after-window' and 'in the future' in caught.value.msg
    assert host.mutating() == []


def test_target_after_the_archived_wal_asks_for_a_wal_switch_on_a_running_primary():
    pitr, host = make()
    plan = pitr.preflight(Request(Target('time', '2026-11-21 09:36:00+00')))
    assert plan['wal_switch']['needed']
    assert 'newest archived transaction: 2026-11-21T09:35:00.000001Z' in plan['wal_switch']['reason']
    assert plan['steps'][0].startswith('switch WAL on the running cluster')


def test_target_after_the_archived_wal_is_refused_when_nothing_can_archive_it():
    host = PitrHost()
    host.running = False
    host.cluster['status'] = 'down'
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', '2026-11-21 09:36:00+00')))
    assert caught.value.code == 'after-window'
    assert 'use target latest' in caught.value.hint
    with pytest.raises(Refused):
        make()[0].preflight(Request(Target('time', '2026-11-21 09:36:00+00'), switch_wal=False))


def test_exclusive_target_equal_to_the_newest_commit_is_inside():
    pitr, host = make()
    plan = pitr.preflight(Request(Target('time', '2026-11-21 09:35:00.000001+00', inclusive=False)))
    assert not plan['wal_switch']['needed']


def test_xid_is_located_in_the_archived_wal_and_chooses_the_backup_by_lsn():
    pitr, host = make()
    host.waldump[('00000003000000000000000D', 'xid=777')] = fixture('waldump-xid-777-00000003000000000000000D.out')
    # Timeline 4 left timeline 3 before the commit of 777: recover along timeline 3.
    plan = pitr.preflight(Request(Target('xid', '777', inclusive=False, timeline='3')))
    assert plan['position'] == {'source': 'wal-scan', 'found': True, 'segment': '00000003000000000000000D',
                                'end_lsn': '0/D018F78', 'scanned': 1, 'record_kind': 'commit',
                                'lsn': '0/D018DA0', 'time': '2026-11-21T09:31:24.774203Z'}
    assert plan['backup_set']['label'] == SECOND
    assert '--target-timeline=3' in plan['restore_command']


def test_xid_not_archived_yet_but_committed_on_the_running_primary():
    pitr, host = make()
    plan = pitr.preflight(Request(Target('xid', '790')))
    assert plan['wal_switch']['needed'] and 'committed but is not archived yet' in plan['wal_switch']['reason']
    assert plan['backup_set'] is None
    assert host.ran('txid_status')


@pytest.mark.parametrize('status, message', [('aborted', 'is aborted'), ('in progress', 'is in progress'),
                                             ('future', 'has not started yet')])
def test_xid_without_a_commit_is_refused(status, message):
    pitr, host = make()
    host.xid_status = status
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('xid', '999999')))
    assert message in caught.value.msg


def test_xid_older_than_every_backup_is_refused_after_scanning_to_the_oldest_backup():
    host = PitrHost()
    host.running = False
    host.cluster['status'] = 'down'
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('xid', '700')))
    assert caught.value.code == 'before-window'
    assert 'since the oldest usable backup' in caught.value.msg


def test_restore_point_from_the_registry(tmp_path):
    pitr, host = make(tmp_path=tmp_path)
    (tmp_path / 'points').mkdir()
    (tmp_path / 'points' / 'before_migration.json').write_text(json.dumps({
        'name': 'before_migration', 'lsn': '0/D018E60', 'created_us': 1795253492214960, 'timeline': 4,
        'system_identifier': SYSTEM_ID, 'wal_file': '00000004000000000000000D'}))
    plan = pitr.preflight(Request(Target('name', 'before_migration', timeline='4')))
    assert plan['position']['source'] == 'registry' and plan['position']['end_lsn'] == '0/D018E60'
    assert plan['backup_set']['label'] == SECOND
    assert not host.ran('--rmgr=XLOG')


def test_restore_point_of_another_cluster_in_the_registry_is_ignored(tmp_path):
    pitr, host = make(tmp_path=tmp_path)
    host.waldump[('00000004000000000000000D', 'XLOG')] = fixture('waldump-xlog-00000004000000000000000D.out')
    (tmp_path / 'points').mkdir()
    (tmp_path / 'points' / 'before_migration.json').write_text(json.dumps({
        'name': 'before_migration', 'lsn': '0/1000000', 'system_identifier': '1'}))
    plan = pitr.preflight(Request(Target('name', 'before_migration', timeline='4')))
    assert plan['position']['source'] == 'wal-scan' and plan['position']['end_lsn'] == '0/D018E60'


def test_restore_point_used_twice_after_the_backup_is_refused():
    pitr, host = make()
    twice = fixture('waldump-xlog-00000004000000000000000D.out').replace('pgBackRest Archive Check', 'before_migration')
    host.waldump[('00000004000000000000000D', 'XLOG')] = twice
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('name', 'before_migration', timeline='4')))
    assert 'occurs more than once' in caught.value.msg
    assert 'target type lsn' in caught.value.hint


def test_a_gap_in_the_archive_is_refused():
    host = PitrHost()
    listing = json.loads(host.listings['0000000300000000'])
    host.listings['0000000300000000'] = json.dumps(dict((k, v) for k, v in listing.items() if '0000000C-' not in k))
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', T)))
    assert 'WAL gap: 00000003000000000000000C missing' in caught.value.msg


def test_new_timeline_with_nothing_archived_yet():
    # Right after a promotion only 00000006.history is archived: recovery would replay timeline 5's old branch.
    host = PitrHost()
    host.archive.add('00000006.history')
    host.histories['00000006.history'] = fixture('00000005.history') + '\n5\t0/D019100\tbefore 2026-11-21\n'
    host.running = False
    host.cluster['status'] = 'down'
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('latest')))
    assert 'nothing of timeline 6 is archived yet' in caught.value.msg
    assert 'timeline=5' in caught.value.hint


def test_the_cluster_of_another_system_is_refused():
    host = PitrHost()
    host.system_id = '1234'
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', T)))
    assert 'is not the cluster stanza main backs up' in caught.value.msg


def test_a_cluster_of_another_major_version_is_refused():
    host = PitrHost()
    host.cluster['version'] = '16'
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', T)))
    assert caught.value.msg.startswith('version mismatch')


def test_missing_server_binaries_are_refused():
    host = PitrHost()
    host.which = lambda name: None if name.endswith('pg_waldump') else name
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', T)))
    assert 'pg_waldump' in caught.value.msg and caught.value.hint == 'install the postgresql-17 package'


def test_backups_of_a_newer_pgbackrest_are_refused():
    host = PitrHost()
    host.pgbackrest_version = '2.45'
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', T)))
    assert 'newer pgBackRest' in caught.value.msg


def test_not_enough_space_is_refused():
    host = PitrHost()
    host.free = 10 * 1024 * 1024
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', T)))
    assert 'not enough free space in /var/lib/postgresql/17' in caught.value.msg


def test_delta_needs_little_space_and_keeps_nothing():
    host = PitrHost()
    host.free = 200 * 1024 * 1024
    pitr, host = make(host)
    plan = pitr.preflight(Request(Target('time', T), delta=True))
    assert plan['data_directory']['mode'] == 'delta' and plan['data_directory']['aside_path'] is None
    assert '--delta' in plan['restore_command']
    assert any('NOT kept' in s for s in plan['steps'])


def test_tablespaces_block_moving_the_data_directory_aside():
    host = PitrHost()
    host.dirs[DATA + '/pg_tblspc'] = ['16390']
    pitr, host = make(host)
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('time', T)))
    assert 'tablespaces' in caught.value.msg and 'delta=true' in caught.value.hint


def test_failing_archiving_is_reported():
    host = PitrHost()
    host.archiver = ('00000005000000000000000C', '00000005000000000000000D', 't')
    pitr, host = make(host)
    plan = pitr.preflight(Request(Target('time', T)))
    assert 'archiving is failing' in plan['warnings'][0]


def test_standby_rebuild_of_a_running_primary_is_refused():
    pitr, host = make()
    with pytest.raises(Refused) as caught:
        pitr.preflight(Request(Target('standby')))
    assert 'running as a primary' in caught.value.msg


@pytest.mark.parametrize('kwargs, message', [
    ({'target': Target('standby'), 'destination': 'elsewhere'}, 'rebuilt in place'),
    ({'target': Target('latest'), 'destination': 'elsewhere', 'delta': True}, 'in-place restores only'),
    ({'target': Target('latest'), 'primary_conninfo': 'host=a'}, 'for standby rebuilds'),
    ({'target': Target('standby'), 'primary_conninfo': 'host=a password=s3cret'}, 'contains a password'),
    ({'target': Target('latest'), 'destination': 'moon'}, 'destination must be'),
])
def test_invalid_requests(kwargs, message):
    with pytest.raises(EngineError) as caught:
        Request(**kwargs)
    assert message in caught.value.msg
    assert 's3cret' not in caught.value.full_message()
