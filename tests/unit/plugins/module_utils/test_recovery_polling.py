# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Following a recovery: a short one is seen done within a tenth of a second, a long one is polled no
more often than once a second (the clock is injected: no real waiting)."""

from __future__ import annotations

from ansible_collections.pgops.backup.plugins.module_utils.pgserver import GOAL_PROMOTED, wait_for_recovery


class Clock(object):
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


class PromotedAt(object):
    """A started server that is out of recovery `after` seconds after the clock's start."""

    log_file = '/var/log/postgresql/scratch.log'

    def __init__(self, clock, after):
        self.clock, self.done_at = clock, clock.now + after

    def log_since_mark(self):
        return ''

    def running(self):
        return True

    def state(self):
        return {'in_recovery': self.clock.now < self.done_at, 'paused': False, 'replay_lsn': '0/3000060',
                'last_replay_time_us': None}


def test_a_short_recovery_is_seen_done_within_a_tenth_of_a_second():
    clock = Clock()
    outcome = wait_for_recovery(PromotedAt(clock, 0.05), GOAL_PROMOTED, 60, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [0.1] and outcome['seconds'] == 0.1


def test_a_long_recovery_backs_off_to_the_poll_interval():
    clock = Clock()
    outcome = wait_for_recovery(PromotedAt(clock, 30), GOAL_PROMOTED, 60, clock=clock, sleep=clock.sleep)
    assert clock.sleeps[:3] == [0.1, 0.15, 0.225] and max(clock.sleeps) == 1.0
    assert 30 <= outcome['seconds'] < 31 and len(clock.sleeps) < 40
