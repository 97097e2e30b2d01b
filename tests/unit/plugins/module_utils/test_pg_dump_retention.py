# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention selection: count, age, both, and the newest good dump that always stays."""

from __future__ import annotations

import random

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_retention as retention
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError

NOW = 1795000000
DAY = 86400


def units(*ages_in_days):
    return [{'name': 'u%02d' % i, 'finished_epoch': NOW - age * DAY} for i, age in enumerate(ages_in_days)]


def names(selected):
    return [u['name'] for u in selected]


@pytest.mark.parametrize('value,seconds', [
    ('14d', 14 * DAY), ('36h', 36 * 3600), ('90m', 5400), ('2w', 14 * DAY), ('3600s', 3600), ('7', 7 * DAY),
    (7, 7 * DAY), (None, None), ('', None), (0, None), ('0d', None), (' 5 d ', 5 * DAY),
])
def test_parse_age(value, seconds):
    assert retention.parse_age(value) == seconds


@pytest.mark.parametrize('value', ['fortnight', '5y', '-3d', '1.5d', True])
def test_bad_ages_are_refused(value):
    with pytest.raises(EngineError):
        retention.parse_age(value)


def test_no_limits_keep_everything():
    keep, prune = retention.select(units(1, 2, 3), NOW)
    assert prune == [] and names(keep) == ['u00', 'u01', 'u02']


def test_count_keeps_the_newest_n():
    keep, prune = retention.select(units(5, 1, 3, 2, 4), NOW, retention_count=2)
    assert names(keep) == ['u01', 'u03']
    assert names(prune) == ['u02', 'u04', 'u00']  # newest first


def test_age_deletes_what_is_older():
    keep, prune = retention.select(units(1, 2, 10, 20), NOW, max_age_seconds=7 * DAY)
    assert names(keep) == ['u00', 'u01'] and names(prune) == ['u02', 'u03']


def test_the_newest_survives_when_every_dump_is_too_old():
    keep, prune = retention.select(units(40, 30, 35), NOW, max_age_seconds=7 * DAY)
    assert names(keep) == ['u01']
    assert names(prune) == ['u02', 'u00']


def test_the_newest_survives_a_count_of_zero_meaning_no_limit_and_of_one():
    assert names(retention.select(units(3, 1, 2), NOW, retention_count=0)[0]) == ['u01', 'u02', 'u00']
    assert names(retention.select(units(3, 1, 2), NOW, retention_count=1)[0]) == ['u01']


def test_both_limits_apply():
    # 7 days max, 3 at most: day 1, 2, 3 kept; day 4 is beyond the count, day 9 beyond the age
    keep, prune = retention.select(units(1, 2, 3, 4, 9), NOW, retention_count=3, max_age_seconds=7 * DAY)
    assert names(keep) == ['u00', 'u01', 'u02'] and names(prune) == ['u03', 'u04']


def test_ties_are_broken_by_name_and_input_order_does_not_matter():
    same = [{'name': 'b', 'finished_epoch': NOW}, {'name': 'a', 'finished_epoch': NOW},
            {'name': 'c', 'finished_epoch': NOW - 1}]
    for _run in range(5):
        random.shuffle(same)
        keep, prune = retention.select(same, NOW, retention_count=1)
        assert names(keep) == ['b'] and names(prune) == ['a', 'c']


def test_empty_and_negative():
    assert retention.select([], NOW, retention_count=3, max_age_seconds=DAY) == ([], [])
    with pytest.raises(EngineError):
        retention.select(units(1), NOW, retention_count=-1)


def test_a_partial_dump_never_counts_as_the_last_good_one():
    # newest three are schema-only/excluding dumps, the complete one is 5 days old
    found = units(1, 2, 3, 5, 6)
    for unit in found[:3]:
        unit['partial'] = True
    keep, prune = retention.select(found, NOW, retention_count=1)
    assert names(keep) == ['u00', 'u03'] and names(prune) == ['u01', 'u02', 'u04']
    keep, prune = retention.select(found, NOW, max_age_seconds=DAY // 2)
    assert names(keep) == ['u00', 'u03']


def test_only_partial_dumps_keep_the_newest_as_before():
    found = units(1, 2, 3)
    for unit in found:
        unit['partial'] = True
    assert names(retention.select(found, NOW, retention_count=1)[0]) == ['u00']


@pytest.mark.parametrize('options, partial', [
    ({'extra_options': ['--schema-only']}, True),
    ({'extra_options': ['--exclude-table=audit.*']}, True),
    ({'extra_options': ['--exclude-schema=audit']}, True),
    ({'extra_options': ['--table=orders']}, True),
    ({'exclude_table_data': ['cache_*']}, False),
    ({'exclude_table_data': ['cache_*'], 'extra_options': ['--exclude-schema=x']}, True),
    ({'extra_options': ['--no-comments', '--quote-all-identifiers']}, False),
    ({}, False), (None, False)])
def test_partial_reasons(options, partial):
    from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest
    reasons = dump_manifest.partial_reasons(options)
    assert bool(reasons) is partial
    if partial:
        assert reasons[0].startswith(options['extra_options'][0] + ': ')
    # manifests written before the flag existed are judged by their options
    assert dump_manifest.is_partial({'options': options}) is partial
