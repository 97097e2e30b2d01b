# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery window arithmetic: which moments can be recovered, and which gaps prevent the rest."""

from __future__ import annotations

from ansible_collections.pgops.backup.plugins.module_utils.pgserver import format_lsn
from ansible_collections.pgops.backup.plugins.module_utils.pitr import Segments
from ansible_collections.pgops.backup.plugins.module_utils.recovery_window import compute

SEG = Segments(16 * 1024 * 1024)
NOW = 1795300000


def name(segno, tli=1):
    return SEG.name(tli, segno)


def backup(label, first, last, stop, kind='full', tli=1):
    """A backup whose WAL runs from segment `first` to `last`, finished at `stop` (epoch)."""
    return {'label': label, 'type': kind, 'start': stop - 30, 'stop': stop, 'wal_start': name(first, tli),
            'wal_stop': name(last, tli), 'lsn_stop': format_lsn(SEG.start_lsn(last) + 0x100), 'error': False}


def archive(first, last, tli=1, without=()):
    return set(name(s, tli) for s in range(first, last + 1) if s not in without)


F1 = backup('20261201-010000F', 2, 3, 1000)
F2 = backup('20261202-010000F', 10, 11, 5000)


def test_no_backups_no_window():
    win = compute([], archive(1, 20), SEG, now=NOW)
    assert win['recoverable'] is False and win['first_recoverable'] is None and win['window_seconds'] is None
    assert win['gaps'] == [] and win['newest_segment'] == name(20)


def test_continuous_wal_the_window_runs_from_the_oldest_backup_to_the_last_commit():
    win = compute([F1, F2], archive(2, 20), SEG, newest_commit_us=9000 * 1000000, now=NOW)
    assert win['first_recoverable'] == {'epoch': 1001, 'backup': F1['label'], 'lsn': F1['lsn_stop']}
    assert win['latest_recoverable'] == {'epoch': 9000, 'segment': name(20), 'bound': 'last commit'}
    assert win['window_seconds'] == 7999 and win['gaps'] == [] and win['missing_segments'] == 0
    assert [b['reaches_latest'] for b in win['backups']] == [True, True]


def test_an_idle_archive_is_bounded_by_the_newest_backup_end():
    win = compute([F1, F2], archive(2, 12), SEG, newest_commit_us=900 * 1000000, now=NOW)
    assert win['latest_recoverable']['epoch'] == 5001
    assert win['latest_recoverable']['bound'] == 'end of the newest backup'
    assert compute([F1, F2], archive(2, 12), SEG, now=NOW)['latest_recoverable']['epoch'] == 5001


def test_a_missing_segment_between_two_backups_is_named_and_moves_the_first_point():
    seen = {}
    times = {name(5): 2500}
    win = compute([F1, F2], archive(2, 20, without={6}), SEG, newest_commit_us=9000 * 1000000, times=times,
                  gap_seen=seen, now=NOW)
    assert win['first_recoverable']['backup'] == F2['label'] and win['window_seconds'] == 9000 - 5001
    assert win['missing_segments'] == 1
    gap = win['gaps'][0]
    assert (gap['first_missing'], gap['last_missing'], gap['timeline'], gap['segments']) == (name(6), name(6), 1, 1)
    assert gap['blocking'] is True and gap['first_seen'] == NOW
    assert (gap['backup_before'], gap['backup_after']) == (F1['label'], F2['label'])
    # the older part is reported, not dropped: F1 still recovers up to the gap
    assert win['backups'][0] == {'label': F1['label'], 'type': 'full', 'stop': 1000, 'recoverable_from': 1001,
                                 'reaches_latest': False, 'stops_at_gap': name(6)}
    assert win['unrecoverable'] == [{'after_segment': name(5), 'from': 2500, 'to': 5001,
                                     'until_backup': F2['label']}]
    assert win['unrecoverable_seconds'] == 2501
    assert seen == {name(6): NOW}


def test_a_full_backup_taken_after_the_gap_was_found_stops_it_blocking():
    seen = {name(6): NOW - 600}
    incr = backup('20261202-010000F_20261203-010000I', 14, 14, NOW - 100, kind='incr')
    win = compute([F1, F2, incr], archive(2, 20, without={6}), SEG, gap_seen=seen, now=NOW)
    assert win['gaps'][0]['blocking'] is True  # an incremental does not clear it
    f3 = backup('20261203-020000F', 16, 17, NOW - 60)
    win = compute([F1, F2, incr, f3], archive(2, 20, without={6}), SEG, gap_seen=seen, now=NOW)
    assert win['gaps'][0]['blocking'] is False and win['gaps'][0]['first_seen'] == NOW - 600
    assert win['unrecoverable'][0]['until_backup'] == F2['label']  # still reported
    assert win['first_recoverable']['backup'] == F2['label']


def test_a_gap_after_every_backup_leaves_nothing_recoverable_to_the_present():
    seen = {}
    win = compute([F1, F2], archive(2, 20, without={15, 16}), SEG, gap_seen=seen, now=NOW)
    assert win['recoverable'] is False and win['window_seconds'] is None and win['first_recoverable'] is None
    assert [(g['first_missing'], g['last_missing'], g['segments'], g['blocking']) for g in win['gaps']] == [
        (name(15), name(16), 2, True)]
    assert win['unrecoverable'][0]['to'] is None and win['unrecoverable'][0]['until_backup'] is None


def test_a_backup_whose_own_wal_is_missing_cannot_start_a_recovery():
    win = compute([F1, F2], archive(2, 20, without={3}), SEG, now=NOW)
    assert win['backups'][0]['recoverable_from'] is None and win['backups'][0]['stops_at_gap'] == name(3)
    assert win['first_recoverable']['backup'] == F2['label']


def test_archive_starting_after_the_oldest_backup_is_a_gap_inside_it():
    # WAL expired (or deleted) below the oldest backup's start: that backup is not usable
    win = compute([F1, F2], archive(8, 20), SEG, now=NOW)
    assert win['gaps'][0]['first_missing'] == name(2) and win['gaps'][0]['last_missing'] == name(7)
    assert win['first_recoverable']['backup'] == F2['label']


def test_expired_backups_and_their_wal_leave_no_gap():
    win = compute([F2], archive(10, 20), SEG, now=NOW)
    assert win['gaps'] == [] and win['first_recoverable']['backup'] == F2['label']


def test_several_repositories_with_different_retention():
    repo1 = compute([F1, F2], archive(2, 20), SEG, now=NOW)
    repo2 = compute([F2], archive(10, 20), SEG, now=NOW)
    assert repo1['first_recoverable']['epoch'] == 1001 and repo2['first_recoverable']['epoch'] == 5001
    assert repo1['gaps'] == repo2['gaps'] == []


def test_several_timelines_follow_the_newest_history():
    switch = SEG.start_lsn(8) + 0x2000
    path = {1: switch, 2: None}
    present = archive(2, 8) | archive(8, 15, tli=2)
    abandoned = backup('20261202-030000F', 12, 12, 6000)  # timeline 1 after the switch: not on the history
    f_tli2 = backup('20261202-040000F', 10, 10, 7000, tli=2)
    win = compute([F1, abandoned, f_tli2], present, SEG, path=path, now=NOW)
    assert win['timeline'] == 2 and win['gaps'] == [] and win['newest_segment'] == name(15, 2)
    assert [b['label'] for b in win['backups']] == [F1['label'], f_tli2['label']]
    assert win['first_recoverable']['backup'] == F1['label']
    # without the new timeline's copy of the switch segment, recovery cannot follow the switch
    win = compute([F1, f_tli2], present - {name(8, 2)}, SEG, path=path, now=NOW)
    assert win['gaps'][0]['first_missing'] == name(8, 2) and win['gaps'][0]['timeline'] == 2
    assert win['first_recoverable']['backup'] == f_tli2['label']


def test_without_history_the_highest_timeline_is_used_alone():
    win = compute([F1], archive(2, 9) | archive(3, 5, tli=3), SEG, now=NOW)
    assert win['timeline'] == 3 and win['oldest_backup'] is None and win['recoverable'] is False


def test_healed_gaps_are_forgotten():
    seen = {name(6): NOW - 600, name(99): NOW - 900}
    compute([F1, F2], archive(2, 20), SEG, gap_seen=seen, now=NOW)
    assert seen == {}


# --- read from a host: the PITR fakes' repository (five timelines, two full backups) ---------------

def host_windows(host, state):
    import json
    from ansible_collections.pgops.backup.plugins.module_utils import pgbackrest
    from ansible_collections.pgops.backup.plugins.module_utils.recovery_window import check_host
    runner = host.runner()
    summaries = pgbackrest.parse_info(json.dumps(host.info))
    return check_host(lambda name: pgbackrest.PgBackRest(runner, stanza=name), summaries, lambda name: SEG.size,
                      state, NOW)


def test_the_host_check_reads_the_repository_only_and_names_a_removed_segment(monkeypatch):
    import json
    from ansible_collections.pgops.backup.plugins.module_utils import process
    from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pitr_fakes
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)
    host = pitr_fakes.PitrHost()
    state = {}
    win = host_windows(host, state)[0]
    assert (win['ok'], win['stanza'], win['repo'], win['archive_id'], win['timeline']) == (True, 'main', 1, '17-1', 5)
    assert win['gaps'] == [] and win['first_recoverable']['backup'] == '20261121-092006F'
    for argv in host.argvs:  # reading only: listings, archive-get into a temporary directory, pg_waldump
        if argv[0].endswith('pgbackrest'):
            assert {'repo-ls', 'archive-get'} & set(argv), argv
        else:
            assert argv[0].rsplit('/', 1)[-1] in ('mktemp', 'rm', 'cat', 'pg_waldump'), argv
    # a segment between the two full backups disappears from the repository
    directory = '0000000200000000'
    listing = json.loads(host.listings[directory])
    victim = sorted(k for k in listing if k.startswith('000000020000000000000005'))[0]
    del listing[victim]
    host.listings[directory] = json.dumps(listing)
    host.archive.discard(victim[:24])
    win = host_windows(host, state)[0]
    assert [(g['first_missing'], g['blocking']) for g in win['gaps']] == [('000000020000000000000005', True)]
    assert win['first_recoverable']['backup'] == '20261121-092940F'
    assert state == {'gaps': {'main/1': {'000000020000000000000005': NOW}}}


def test_a_hole_just_before_freshly_stored_segments_is_not_a_gap_yet():
    times = {name(19): NOW - 20, name(20): NOW - 10, name(7): NOW - 4000}
    win = compute([F1, F2], archive(2, 20, without={6, 18}), SEG, times=times, now=NOW)
    assert [g['first_missing'] for g in win['gaps']] == [name(6)]  # 18: async archiving may still fill it
    win = compute([F1, F2], archive(2, 20, without={6, 18}), SEG, times=times, now=NOW + 600)
    assert [g['first_missing'] for g in win['gaps']] == [name(6), name(18)]


def test_a_settling_hole_keeps_the_memory_of_a_gap_found_earlier():
    seen = {name(18): NOW - 900}
    times = {name(19): NOW - 20}
    win = compute([F1, F2], archive(2, 20, without={18}), SEG, times=times, gap_seen=seen, now=NOW)
    assert win['gaps'] == [] and seen == {name(18): NOW - 900}
