# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery target, WAL arithmetic, pg_waldump and server log parsing, backup choice and the
verification that recovery stopped exactly at the target. Real outputs from tests/unit/fixtures/pitr."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import pitr
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import parse_info
from ansible_collections.pgops.backup.plugins.module_utils.pgserver import (
    format_lsn, format_timestamp, iso, parse_controldata, parse_lsn, parse_server_log, parse_state, parse_timestamp)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.wal import WalArchive
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import (
    FIRST, FIRST_STOP, SECOND, SECOND_STOP, fixture)

SEG = pitr.Segments(16 * 1024 * 1024)
T = '2026-11-21 09:29:42.318497+00'


# --- values ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    ('2026-11-21 09:29:42.318497+00', '2026-11-21 09:29:42.318497+00'),
    ('2026-11-21 11:29:42.318497+02', '2026-11-21 09:29:42.318497+00'),
    ('2026-11-21 04:59:42.3+05:30', '2026-11-20 23:29:42.300000+00'),
    ('2026-11-21T09:29:42Z', '2026-11-21 09:29:42.000000+00'),
    ('2026-11-21 09:29:43.36102 UTC', '2026-11-21 09:29:43.361020+00'),
])
def test_timestamps_are_normalised_to_utc_microseconds(text, expected):
    assert format_timestamp(parse_timestamp(text)) == expected


def test_a_time_without_zone_is_refused_for_targets():
    with pytest.raises(EngineError) as caught:
        pitr.Target('time', '2026-05-02 14:29:59')
    assert 'no time zone' in caught.value.msg
    assert '+02' in caught.value.hint


@pytest.mark.parametrize('text', ['yesterday', '2026-13-01 00:00:00+00', '14:29'])
def test_malformed_times_are_refused(text):
    with pytest.raises(EngineError):
        pitr.Target('time', text)


def test_lsn_round_trip():
    assert parse_lsn('0/B0093D8') == 0xB0093D8
    assert parse_lsn('1/0') == 1 << 32
    assert format_lsn(parse_lsn('0/0D018E60')) == '0/D018E60'
    with pytest.raises(EngineError):
        parse_lsn('B0093D8')


# --- the target ----------------------------------------------------------------------------------

def test_time_target_options_and_description():
    target = pitr.Target('time', '2026-11-21 11:29:42.318497+02', inclusive=False)
    assert target.restore_options() == ['--type=time', '--target=2026-11-21 09:29:42.318497+00',
                                        '--target-exclusive', '--target-action=promote']
    assert target.restore_options(action='pause')[-1] == '--target-action=pause'
    assert target.describe() == 'time 2026-11-21 09:29:42.318497+00 (exclusive), then promote'


@pytest.mark.parametrize('kind, value, options', [
    ('xid', '777', ['--type=xid', '--target=777', '--target-action=promote']),
    ('name', 'before_migration', ['--type=name', '--target=before_migration', '--target-action=promote']),
    ('lsn', '0/d018e60', ['--type=lsn', '--target=0/D018E60', '--target-action=promote']),
    ('immediate', None, ['--type=immediate', '--target-action=promote']),
    ('latest', None, ['--type=default']),
    ('standby', None, ['--type=standby']),
])
def test_pgbackrest_spelling_of_each_target(kind, value, options):
    assert pitr.Target(kind, value).restore_options() == options


def test_timeline_is_passed_when_given():
    assert pitr.Target('latest', timeline='current').restore_options() == ['--type=default', '--target-timeline=current']
    assert pitr.Target('xid', '900', timeline=3).restore_options()[-1] == '--target-timeline=3'


@pytest.mark.parametrize('kwargs, message', [
    ({'kind': 'time'}, 'needs a value'),
    ({'kind': 'latest', 'value': 'x'}, 'takes no value'),
    ({'kind': 'name', 'value': 'rp', 'inclusive': False}, 'exclusive applies'),
    ({'kind': 'latest', 'action': 'pause'}, 'ends recovery on its own'),
    ({'kind': 'xid', 'value': '2'}, 'not a transaction id'),
    ({'kind': 'xid', 'value': '12a'}, 'not a transaction id'),
    ({'kind': 'name', 'value': "x'; DROP TABLE t; --"}, 'not a usable restore point name'),
    ({'kind': 'when', 'value': 'x'}, 'target type must be'),
    ({'kind': 'xid', 'value': '900', 'action': 'explode'}, 'target action must be'),
    ({'kind': 'latest', 'timeline': 'newest'}, 'target timeline must be'),
])
def test_invalid_targets_are_refused(kwargs, message):
    with pytest.raises(EngineError) as caught:
        pitr.Target(**kwargs)
    assert message in caught.value.msg


# --- segments and timelines ----------------------------------------------------------------------

def test_segment_names_and_numbers():
    assert SEG.name(5, 0xD) == '00000005000000000000000D'
    assert SEG.parse('00000003000000010000000B') == (3, 0x10B)
    assert SEG.name(1, 0x1FF) == '0000000100000001000000FF'
    assert SEG.of_lsn(parse_lsn('0/B0093D8')) == 0xB
    assert SEG.directory('00000005000000000000000D') == '0000000500000000'
    big = pitr.Segments(64 * 1024 * 1024)
    assert big.name(1, 0x40) == '000000010000000100000000'


def test_history_files_as_archived():
    history = pitr.parse_history(fixture('00000005.history'))
    assert history == [(1, 0x4037EC8), (2, 0xB0093D8), (3, 0xD018DA0), (4, 0xD018E60)]
    path = pitr.timeline_path(5, history)
    assert path[5] is None and path[2] == 0xB0093D8


def test_segments_on_a_timeline_path_follow_postgresql():
    path = pitr.timeline_path(5, pitr.parse_history(fixture('00000005.history')))
    assert WalArchive.covering(0x3, path, SEG) == [1]
    # The segment of a switch point exists on the old and the new timeline; the new one comes first.
    assert WalArchive.covering(0x4, path, SEG) == [2, 1]
    assert WalArchive.covering(0xA, path, SEG) == [2]
    assert WalArchive.covering(0xB, path, SEG) == [3, 2]
    assert WalArchive.covering(0xD, path, SEG) == [5, 4, 3]
    assert WalArchive.covering(0xE, path, SEG) == [5]


# --- pg_waldump ------------------------------------------------------------------------------------

def test_waldump_commits_with_their_utc_time():
    records = pitr.parse_waldump(fixture('waldump-transaction-00000003000000000000000B.out'))
    commits = [r for r in records if r['kind'] == 'commit']
    assert len(commits) == len(records) > 3
    assert commits[0]['xid'] == 762 and commits[0]['lsn'] == '0/0B004DC0'
    assert iso(commits[0]['time_us']) == '2026-11-21T09:29:41.950168Z'


def test_waldump_finds_the_commit_of_a_dropping_transaction():
    records = pitr.parse_waldump(fixture('waldump-xid-777-00000003000000000000000D.out'))
    assert [(r['xid'], r['kind'], r['lsn']) for r in records] == [(777, 'commit', '0/0D018DA0')]
    assert iso(records[0]['time_us']) == '2026-11-21T09:31:24.774203Z'


def test_waldump_restore_points_including_pgbackrest_check_ones():
    points = [r for r in pitr.parse_waldump(fixture('waldump-xlog-00000004000000000000000D.out'))
              if r['kind'] == 'restore_point']
    assert [(p['name'], p['lsn'], p['end_lsn']) for p in points] == [
        ('before_migration', '0/0D018DF8', '0/D018E60'), ('pgBackRest Archive Check', '0/0D018E60', '0/D018EC8')]


# --- the server log --------------------------------------------------------------------------------

def test_log_of_a_time_recovery_paused_at_its_target():
    events = parse_server_log(fixture('server-log-time-paused-17.log'))
    assert events['stop'] == {'kind': 'xid', 'position': 'before', 'record': 'commit', 'xid': 772,
                              'time': '2026-11-21 09:29:43.36102+00',
                              'message': 'recovery stopping before commit of transaction 772, '
                                         'time 2026-11-21 09:29:43.36102+00'}
    assert events['paused'] and events['read_only_ready'] and not events['ready']
    assert events['consistent_at'] == '0/A000120'
    assert events['restored'][-1] == '00000002000000000000000B'
    assert events['fatal'] == []


def test_log_after_promotion():
    events = parse_server_log(fixture('server-log-time-promoted-17.log'))
    assert events['new_timeline'] == 3 and events['ready'] and events['archive_recovery_complete']
    assert events['last_transaction_time'] == '2026-11-21 09:29:42.2852+00'


@pytest.mark.parametrize('name, stop', [
    ('server-log-xid-exclusive-paused-17.log', {'kind': 'xid', 'position': 'before', 'xid': 777}),
    ('server-log-name-paused-17.log', {'kind': 'name', 'position': 'at', 'name': 'before_migration'}),
    ('server-log-immediate-promoted-17.log', {'kind': 'consistency', 'position': 'after'}),
])
def test_log_stop_lines(name, stop):
    events = parse_server_log(fixture(name))
    assert dict((k, events['stop'][k]) for k in stop) == stop


def test_log_of_a_target_that_was_not_reached():
    events = parse_server_log(fixture('server-log-target-not-reached-17.log'))
    assert events['stop'] is None
    assert events['redo_done_at'] == '0/D019008'
    assert events['fatal'] == ['recovery ended before configured recovery target was reached']


def test_log_of_a_streaming_standby():
    events = parse_server_log(fixture('server-log-standby-streaming-17.log'))
    assert events['streaming'] == {'lsn': '0/E000000', 'timeline': 5}


def test_connection_attempts_while_starting_are_not_recovery_failures():
    log = ('2026-11-21 09:29:55.900 UTC [1610] postgres@postgres FATAL:  the database system is not yet accepting '
           'connections\n2026-11-21 09:29:55.900 UTC [1610] postgres@postgres DETAIL:  Consistent recovery state '
           'has not been yet reached.\n')
    assert parse_server_log(log)['fatal'] == []


def test_controldata_and_state_rows():
    control = parse_controldata(fixture('controldata-17.out'))
    assert control['system_identifier'] == '7710549402095226222'
    assert control['wal_segment_size'] == 16777216
    assert control['settings'] == {'max_connections': '100', 'max_worker_processes': '8', 'max_wal_senders': '10',
                                   'max_prepared_transactions': '0', 'max_locks_per_transaction': '64'}
    assert parse_state([['t', '0/B0093D8', '1795253382285200', 't', '2', '']]) == {
        'in_recovery': True, 'replay_lsn': '0/B0093D8', 'last_replay_time_us': 1795253382285200, 'paused': True,
        'timeline': 2, 'wal_receiver': None}


# --- choosing the backup ---------------------------------------------------------------------------

def stanza():
    return parse_info(fixture('info-timelines-2.55.1.json'))[0]


def path5():
    return pitr.timeline_path(5, pitr.parse_history(fixture('00000005.history')))


def test_both_backups_lie_on_the_history_of_timeline_5():
    usable = pitr.usable_backups(stanza(), 1, path5(), SEG)
    assert [b['label'] for b in usable] == [FIRST, SECOND]


def test_a_backup_taken_after_the_branch_point_is_not_on_the_new_timeline():
    # Timeline 2 left timeline 1 at 0/4037EC8; a backup of timeline 1 ending later is not on its history.
    data = stanza()
    data['backups'][0]['lsn_stop'] = '0/5000000'
    assert [b['label'] for b in pitr.usable_backups(data, 1, path5(), SEG)] == [SECOND]


def test_backups_whose_wal_expired_are_not_usable():
    data = stanza()
    data['archive_min'] = '000000010000000000000004'
    assert [b['label'] for b in pitr.usable_backups(data, 1, path5(), SEG)] == [SECOND]


def test_time_targets_pick_the_newest_backup_that_ends_before():
    usable = pitr.usable_backups(stanza(), 1, path5(), SEG)
    target = pitr.Target('time', T)
    backup, reason = pitr.choose_backup(usable, target, {'time_us': target.time_us})
    assert backup['label'] == SECOND and reason == 'newest backup ending before the target'
    # One microsecond before the second backup's stop second ends: the first backup.
    early = pitr.Target('time', format_timestamp((SECOND_STOP + 1) * 1000000 - 1))
    assert pitr.choose_backup(usable, early, {'time_us': early.time_us})[0]['label'] == FIRST
    exact = pitr.Target('time', format_timestamp((SECOND_STOP + 1) * 1000000))
    assert pitr.choose_backup(usable, exact, {'time_us': exact.time_us})[0]['label'] == SECOND


def test_a_target_before_the_oldest_backup_is_refused():
    usable = pitr.usable_backups(stanza(), 1, path5(), SEG)
    target = pitr.Target('time', format_timestamp(FIRST_STOP * 1000000))
    with pytest.raises(EngineError) as caught:
        pitr.choose_backup(usable, target, {'time_us': target.time_us})
    assert caught.value.code == 'before-window'
    assert FIRST in caught.value.msg


def test_lsn_positions_choose_by_stop_lsn():
    usable = pitr.usable_backups(stanza(), 1, path5(), SEG)
    target = pitr.Target('xid', '777')
    assert pitr.choose_backup(usable, target, {'lsn': 0xA000120})[0]['label'] == SECOND
    assert pitr.choose_backup(usable, target, {'lsn': 0xA00011F})[0]['label'] == FIRST


def test_an_explicit_set_must_precede_the_target():
    usable = pitr.usable_backups(stanza(), 1, path5(), SEG)
    target = pitr.Target('lsn', '0/5000000')
    assert pitr.choose_backup(usable, target, {'lsn': target.lsn}, FIRST)[1] == 'requested'
    with pytest.raises(EngineError) as caught:
        pitr.choose_backup(usable, target, {'lsn': target.lsn}, SECOND)
    assert 'ends after the target' in caught.value.msg
    with pytest.raises(EngineError):
        pitr.choose_backup(usable, target, {'lsn': target.lsn}, '20200101-000000F')


def test_an_unlocated_target_needs_an_explicit_set():
    usable = pitr.usable_backups(stanza(), 1, path5(), SEG)
    with pytest.raises(EngineError) as caught:
        pitr.choose_backup(usable, pitr.Target('name', 'x'), {'lsn': None, 'time_us': None})
    assert 'backup_set' in caught.value.hint


# --- verification ----------------------------------------------------------------------------------

def paused(last_us, lsn='0/B0093D8'):
    return {'in_recovery': True, 'replay_lsn': lsn, 'last_replay_time_us': last_us, 'paused': True, 'timeline': 2}


def test_time_recovery_verified_from_log_and_sql():
    events = parse_server_log(fixture('server-log-time-paused-17.log'))
    result = pitr.verify_recovery(pitr.Target('time', T), {}, events, paused(1795253382285200))
    assert result['verified'] and result['method'] == 'log+sql'
    assert result['evidence'][0].startswith('stopped before transaction 772 committed at 2026-11-21T09:29:43.361020Z')


def test_time_recovery_that_went_past_the_target_is_caught():
    events = parse_server_log(fixture('server-log-time-paused-17.log'))
    target = pitr.Target('time', '2026-11-21 09:29:42.0+00')
    result = pitr.verify_recovery(target, {}, events, paused(1795253382285200))
    assert not result['verified']
    assert any('AFTER' in p for p in result['problems'])


def test_time_recovery_that_stopped_too_early_is_caught():
    events = parse_server_log(fixture('server-log-time-paused-17.log'))
    target = pitr.Target('time', '2026-11-21 09:29:50+00')
    result = pitr.verify_recovery(target, {}, events, paused(1795253382285200))
    assert not result['verified']
    assert any('which is not after the target' in p for p in result['problems'])


def test_exclusive_time_target_stops_before_a_commit_at_the_target():
    events = parse_server_log(fixture('server-log-time-paused-17.log'))
    exclusive = pitr.Target('time', '2026-11-21 09:29:43.36102+00', inclusive=False)
    assert pitr.verify_recovery(exclusive, {}, events, paused(1795253382285200))['verified']
    inclusive = pitr.Target('time', '2026-11-21 09:29:43.36102+00')
    assert not pitr.verify_recovery(inclusive, {}, events, paused(1795253382285200))['verified']


def test_xid_recovery_verified_and_wrong_direction_caught():
    events = parse_server_log(fixture('server-log-xid-exclusive-paused-17.log'))
    assert pitr.verify_recovery(pitr.Target('xid', '777', inclusive=False), {}, events, paused(None))['verified']
    wrong = pitr.verify_recovery(pitr.Target('xid', '777'), {}, events, paused(None))
    assert not wrong['verified'] and 'not after transaction 777' in wrong['problems'][0]
    other = pitr.verify_recovery(pitr.Target('xid', '778', inclusive=False), {}, events, paused(None))
    assert not other['verified']


def test_name_recovery_checks_the_replay_position_against_the_registry():
    events = parse_server_log(fixture('server-log-name-paused-17.log'))
    target = pitr.Target('name', 'before_migration')
    ok = pitr.verify_recovery(target, {'end_lsn': '0/D018E60'}, events, paused(None, '0/D018E60'))
    assert ok['verified'] and len(ok['evidence']) == 2
    # A restore point of the same name earlier in the WAL: PostgreSQL stopped at that one.
    early = pitr.verify_recovery(target, {'end_lsn': '0/D018E60'}, events, paused(None, '0/C000100'))
    assert not early['verified']


def test_immediate_and_latest():
    events = parse_server_log(fixture('server-log-immediate-promoted-17.log'))
    assert pitr.verify_recovery(pitr.Target('immediate'), {}, events, None)['verified']
    latest = pitr.verify_recovery(pitr.Target('latest'), {}, events, None)
    assert not latest['verified'] and 'although no target was set' in latest['problems'][0]


def test_recovery_to_the_end_of_wal_instead_of_the_target_is_caught():
    events = parse_server_log(fixture('server-log-target-not-reached-17.log'))
    result = pitr.verify_recovery(pitr.Target('time', '2026-11-21 09:40:00+00'), {}, events, None)
    assert not result['verified']
    assert any('without stopping at the target' in p for p in result['problems'])


def test_without_a_readable_log_sql_alone_decides():
    result = pitr.verify_recovery(pitr.Target('time', T), {}, parse_server_log(''), paused(1795253382285200))
    assert result['verified'] and result['method'] == 'sql'


def test_window_description():
    usable = pitr.usable_backups(stanza(), 1, path5(), SEG)
    win = pitr.window(usable, '00000005000000000000000D', 1795253492214960, SEG.start_lsn(0xE))
    assert win == {'from_time': '2026-11-21T09:20:09.000000Z', 'from_lsn': '0/3000050', 'from_backup': FIRST,
                   'to_segment': '00000005000000000000000D', 'to_time': '2026-11-21T09:31:32.214960Z',
                   'to_lsn': '0/E000000'}
    assert 'from 2026-11-21T09:20:09.000000Z (end of backup %s' % FIRST in pitr.describe_window(win)
