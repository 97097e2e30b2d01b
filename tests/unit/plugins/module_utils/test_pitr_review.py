# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Review of the recovery guards (issue 12): a cluster left in a targeted recovery by an earlier PITR
(pitr_action=pause or shutdown, a recovery that was not verified) is not a standby, so "pick another
target and run again" works; a URI password that contains '?' or '#' is still a password."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.pitr import Target
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.recovery import (
    Pitr, Refused, Request, conninfo_has_password)
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import (
    DATA, NOW, Clock, PitrHost, commit_line)

T = '2026-11-21 09:29:42.318497+00'


def new_host():
    host = PitrHost()
    host.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
        781, '0/0D019300', '2026-11-21 09:35:00.000001')
    return host


def make(host, tmp_path):
    clock = Clock(NOW)
    return Pitr(PgBackRest(host.runner(), stanza='main'), record_dir=str(tmp_path / 'records'),
                registry_dir=str(tmp_path / 'points'), clock=clock, sleep=clock.sleep, hostname='db1.example',
                environ={'SUDO_USER': 'alice'}, lock_dir=str(tmp_path / 'locks'))


def plan_of(host, tmp_path):
    return make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True), check_mode=True)['plan']


def test_a_cluster_paused_at_an_earlier_pitr_target_is_not_a_standby(tmp_path):
    # pitr_action=pause (or a recovery that was not verified) leaves it running, paused, with recovery.signal.
    host = new_host()
    host.in_recovery = True
    host.paths.add(DATA + '/recovery.signal')
    plan = plan_of(host, tmp_path)
    assert plan['archiving_disabled'] is False and '--archive-mode=off' not in plan['restore_command']


def test_a_cluster_shut_down_at_an_earlier_pitr_target_is_not_a_standby(tmp_path):
    # pitr_action=shutdown: pg_control says "shut down in recovery", recovery.signal is still there.
    host = new_host()
    host.running, host.cluster['status'] = False, 'down'
    host.controldata = host.controldata.replace('in production', 'shut down in recovery')
    host.paths.add(DATA + '/recovery.signal')
    plan = plan_of(host, tmp_path)
    assert plan['archiving_disabled'] is False


def test_a_targeted_recovery_that_does_not_archive_into_the_stanza_is_still_refused(tmp_path):
    host = new_host()
    host.in_recovery = True
    host.paths.add(DATA + '/recovery.signal')
    host.archive_command = 'pgbackrest --stanza=other archive-push %p'
    with pytest.raises(Refused) as caught:
        plan_of(host, tmp_path)
    assert caught.value.code == 'not-primary'
    assert 'it is in a targeted recovery (recovery.signal), but its archive_command archives into stanza other' \
        in caught.value.msg


def test_a_standby_with_both_signal_files_is_still_refused(tmp_path):
    host = new_host()
    host.in_recovery = True
    host.paths.update([DATA + '/recovery.signal', DATA + '/standby.signal'])
    with pytest.raises(Refused) as caught:
        plan_of(host, tmp_path)
    assert 'it is running as a standby' in caught.value.msg


@pytest.mark.parametrize('conninfo', [
    'postgresql://rep:se?cret@db1/postgres',
    'postgresql://rep:se#cret@db1',
])
def test_a_uri_password_with_question_mark_or_hash_is_a_password(conninfo):
    # libpq reads user info up to the first '@' or '/', '?' and '#' included.
    assert conninfo_has_password(conninfo)
    with pytest.raises(EngineError) as caught:
        Request(Target('standby'), primary_conninfo=conninfo)
    assert 'contains a password' in caught.value.msg and 'cret' not in caught.value.full_message()


def test_a_uri_without_user_info_is_not_a_password():
    assert not conninfo_has_password('postgresql://db1:5432/postgres?application_name=a:b@c')


def test_a_failure_after_the_stop_and_before_the_move_says_how_to_start_the_cluster_again(tmp_path):
    host = new_host()
    host._mv = lambda argv, env, data: (1, '', 'mv: cannot move: Device or resource busy\n')
    with pytest.raises(EngineError) as caught:
        make(host, tmp_path).run(Request(Target('time', T), stop_cluster=True))
    assert host.ran('systemctl', 'stop') and not host.ran('systemctl', 'start')
    assert ('nothing was restored: %s is unchanged, but this run stopped postgresql@17-main.service; start it '
            'again with: systemctl start postgresql@17-main.service' % DATA) in caught.value.hint


def test_a_lock_directory_that_cannot_be_made_fails_the_pitr_cleanly_before_anything_changes(tmp_path):
    host = new_host()
    (tmp_path / 'not-a-dir').write_text('')
    pitr = make(host, tmp_path)
    pitr.lock_dir = str(tmp_path / 'not-a-dir' / 'locks')
    with pytest.raises(EngineError) as caught:
        pitr.run(Request(Target('time', T), stop_cluster=True))
    assert caught.value.msg.startswith('cannot take the lock of cluster 17/main in %s' % pitr.lock_dir)
    assert 'host_tools' in caught.value.hint and caught.value.record
    assert host.mutating() == []
