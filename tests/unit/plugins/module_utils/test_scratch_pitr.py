# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PITR elsewhere and its scratch instance: stopped after the run unless kept, the output says how to
reach or start it, and the reserve on production's file systems is kept before anything is restored."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.pitr import Target
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.recovery import Pitr, Request
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import (
    NOW, Clock, PitrHost, commit_line, fixture, paused_at)

T = '2026-11-21 09:29:42.318497+00'
LAST_US = 1795253382285200
SCRATCH = '/var/lib/postgresql/pgops-scratch/forensics'


def scratch_host():
    host = PitrHost()
    host.waldump[('00000005000000000000000D', 'Transaction')] = commit_line(
        781, '0/0D019300', '2026-11-21 09:35:00.000001')

    def on_start(h):
        h.server_log = fixture('server-log-time-paused-17.log')
        h.states = [paused_at('0/B0093D8', LAST_US, 2)]
        h.state = h.states[-1]
    host.on_start = on_start
    return host


def pitr(host, tmp_path):
    clock = Clock(NOW)
    return Pitr(PgBackRest(host.runner(), stanza='main'), record_dir=str(tmp_path / 'records'),
                registry_dir=str(tmp_path / 'points'), clock=clock, sleep=clock.sleep, hostname='db1.example',
                environ={'SUDO_USER': 'alice'}, lock_dir=str(tmp_path / 'locks'))


def elsewhere(**kwargs):
    return Request(Target('time', T), destination='elsewhere', scratch_name='forensics', **kwargs)


def test_a_pitr_elsewhere_instance_is_stopped_after_the_run_and_the_output_says_how_to_start_it(tmp_path):
    host = scratch_host()
    result = pitr(host, tmp_path).run(elsewhere())
    scratch = result['scratch']
    assert scratch['state'] == 'stopped' and host.ran('pg_ctl', 'stop')
    assert 'is stopped (kept in %s): start it with `runuser -u postgres -- ' % SCRATCH in scratch['next']
    assert 'pg_ctl start -D %s' % SCRATCH in scratch['next'] and 'psql -h /var/run/postgresql -p 5433' in scratch['next']


def test_kept_running_when_asked_and_the_output_says_how_to_reach_and_stop_it(tmp_path):
    host = scratch_host()
    result = pitr(host, tmp_path).run(elsewhere(scratch_state='running'))
    scratch = result['scratch']
    assert scratch['state'] == 'running' and not host.ran('pg_ctl', 'stop')
    assert 'is running on port 5433' in scratch['next'] and 'pg_ctl stop -D %s -m fast' % SCRATCH in scratch['next']


def test_a_pitr_elsewhere_that_would_eat_the_reserve_is_refused_before_anything_changes(tmp_path):
    host = scratch_host()
    with pytest.raises(EngineError) as err:
        pitr(host, tmp_path).run(elsewhere(scratch_reserve='90%'))
    assert 'below the reserve of' in err.value.msg and 'the data directory of 17/main' in err.value.msg
    assert not host.ran('pgbackrest', 'restore') and not host.ran('mkdir')
    with pytest.raises(EngineError) as err:
        elsewhere(scratch_reserve='a lot')
    assert "scratch reserve 'a lot' is not a size" in err.value.msg


def test_the_host_command_stops_the_instance_unless_kept_and_passes_the_reserve():
    import argparse
    from ansible_collections.pgops.backup.plugins.module_utils import cli_pitr
    parser = argparse.ArgumentParser()
    cli_pitr.register(parser.add_subparsers(dest='command'))
    base = ['pitr', 'restore', '--stanza', 'main', '--latest', '--elsewhere']
    request = cli_pitr._request(parser.parse_args(base))
    assert request.scratch_state == 'stopped' and request.scratch_reserve is None
    request = cli_pitr._request(parser.parse_args(base + ['--scratch-state', 'running', '--scratch-reserve', '5G']))
    assert request.scratch_state == 'running' and request.scratch_reserve == ('bytes', 5 * 1024 ** 3)
