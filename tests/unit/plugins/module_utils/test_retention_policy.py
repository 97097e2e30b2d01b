# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""retention_policy: calendar rules over a generated year of backups, keep marks, the newest good one."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import backup_retention as br
from ansible_collections.pgops.backup.plugins.module_utils import retention_policy as rp
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.retention_fakes import DAY, history

NOW = 1795255200  # 2026-11-21T10:00:00Z (tests/unit/conftest.py)
GUIDES = {'daily': 14, 'weekly': 8, 'monthly': 12}
UTC = datetime.timezone.utc


def _day(epoch):
    return datetime.datetime.fromtimestamp(epoch, UTC).date()


def expected_fulls(doc, daily, weekly, monthly):
    """The guides' model computed independently, from dates: the newest full of each of the
    newest `daily` days, `weekly` ISO weeks and `monthly` months that hold a full."""
    fulls = sorted((b for b in doc[0]['backup'] if b['type'] == 'full' and not b['error']),
                   key=lambda b: b['timestamp']['stop'], reverse=True)
    keep = set()
    for count, key in ((daily, lambda d: d), (weekly, lambda d: d.isocalendar()[:2]),
                       (monthly, lambda d: (d.year, d.month))):
        seen = []
        for b in fulls:
            k = key(_day(b['timestamp']['stop']))
            if k not in seen:
                seen.append(k)
                if len(seen) <= count:
                    keep.add(b['label'])
    return keep


def plan(doc, policy=None, now=NOW, repo=None):
    return br.plan_stanza(doc[0], rp.parse_policy(GUIDES if policy is None else policy), now, repo=repo)


def test_a_year_of_daily_fulls_keeps_exactly_the_guides_model_in_every_repository():
    doc = history(NOW, days=365, repos=(1, 2))
    plans = plan(doc)
    assert [p['repo'] for p in plans] == [1, 2]
    want = expected_fulls([dict(doc[0], backup=[b for b in doc[0]['backup'] if b['database']['repo-key'] == 1])],
                          14, 8, 12)
    for p in plans:
        kept_fulls = set(d['label'] for d in p['backups'] if d['type'] == 'full' and d['action'] == 'keep')
        assert kept_fulls == want
        # 14 days + older weeks + older months: far fewer than 365
        assert 14 <= len(kept_fulls) <= 14 + 8 + 12
        # diff/incr follow their full; only fulls are expired by set (pgBackRest takes the dependents)
        for d in p['backups']:
            full = d['label'].split('_')[0]
            assert d['action'] == ('keep' if full in kept_fulls else 'expire'), d
        assert set(p['expire_sets']) == set(d['label'] for d in p['backups']
                                            if d['type'] == 'full' and d['action'] == 'expire')


def test_kept_by_names_the_rules_and_expired_ones_say_why():
    doc = history(NOW, days=120)
    decisions = dict((d['label'], d) for d in plan(doc)[0]['backups'])
    newest_full = max((b for b in doc[0]['backup'] if b['type'] == 'full'), key=lambda b: b['timestamp']['stop'])
    assert decisions[newest_full['label']]['kept_by'][:3] == ['daily', 'weekly', 'monthly']
    assert 'newest good full' in decisions[newest_full['label']]['kept_by']
    old = [d for d in decisions.values() if d['type'] == 'full' and d['action'] == 'expire']
    assert old and all('daily: day ' in d['reason'] and 'weekly: week ' in d['reason'] for d in old)
    diff_of_old = [d for d in decisions.values() if d['type'] == 'diff' and d['action'] == 'expire'][0]
    assert diff_of_old['reason'].startswith('its base ') and diff_of_old['reason'].endswith(' expires')


def test_dependencies_of_every_kept_backup_are_kept():
    doc = history(NOW, days=60)
    by_label = dict((b['label'], b) for b in doc[0]['backup'])
    p = plan(doc, {'daily': 3})[0]
    kept = set(p['kept'])
    for label in kept:
        b = by_label[label]
        for dep in [b['prior']] + list(b['reference'] or []):
            if dep:
                assert dep in kept, (label, dep)
    # nothing named for expire is needed by a kept backup
    for label in p['expire_sets']:
        assert not any(label in ([by_label[k]['prior']] + list(by_label[k]['reference'] or [])) for k in kept)


def test_a_marked_backup_survives_and_keeps_what_it_depends_on():
    doc = history(NOW, days=200)
    old_full = sorted(b['label'] for b in doc[0]['backup'] if b['type'] == 'full')[5]
    doc = history(NOW, days=200, marks={old_full: 'alice at 2026-06-01T00:00:00Z: audit 7'})
    decisions = dict((d['label'], d) for d in plan(doc, {'daily': 2})[0]['backups'])
    assert decisions[old_full]['action'] == 'keep' and 'keep mark' in decisions[old_full]['kept_by']
    assert decisions[old_full]['keep_mark'] == 'alice at 2026-06-01T00:00:00Z: audit 7'
    own = [d for d in decisions.values() if d['label'].startswith(old_full + '_')]
    assert own and all(d['action'] == 'keep' for d in own)


def test_a_marked_incr_keeps_its_diff_and_full():
    doc = history(NOW, days=30)
    incr = sorted(b['label'] for b in doc[0]['backup'] if b['type'] == 'incr' and b['prior'].endswith('D'))[0]
    for b in doc[0]['backup']:
        if b['label'] == incr:
            b['annotation'] = {'pgops-keep': 'bob at x: legal hold'}
    decisions = dict((d['label'], d) for d in plan(doc, {'daily': 1})[0]['backups'])
    full, diff = incr.split('_')[0], [b for b in doc[0]['backup'] if b['label'] == incr][0]['prior']
    assert decisions[incr]['action'] == 'keep'
    assert decisions[diff]['action'] == 'keep' and 'needed by %s' % incr in decisions[diff]['kept_by']
    assert decisions[full]['action'] == 'keep' and decisions[full]['label'] not in plan(doc, {'daily': 1})[0]['expire_sets']


def test_the_newest_good_full_survives_when_the_rules_would_keep_none():
    # all backups are older than the `within` window: the rules keep nothing, the newest good full stays
    doc = history(NOW - 40 * DAY, days=10, with_diff_incr=False)
    p = plan(doc, {'within': '1d'})[0]
    assert len(p['kept']) == 1 and p['backups'][0]['kept_by'] == ['newest good full']


def test_a_full_with_errors_is_never_the_newest_good_one():
    doc = history(NOW - DAY, days=5, with_diff_incr=False)
    labels = sorted(b['label'] for b in doc[0]['backup'])
    doc = history(NOW - DAY, days=5, with_diff_incr=False, errors=[labels[-1]])
    decisions = dict((d['label'], d) for d in plan(doc, {'within': '1h'})[0]['backups'])
    assert decisions[labels[-1]]['action'] == 'expire'
    assert decisions[labels[-1]]['reason'].startswith('not a good backup')
    assert decisions[labels[-2]]['kept_by'] == ['newest good full']


def test_short_buckets_for_tests_and_molecule():
    # five fulls two minutes apart; buckets of 5 minutes, keep 2: the newest of the two newest buckets
    base = NOW - NOW % 300
    units = [{'id': 'b%d' % i, 'time': base - 600 + i * 120, 'kind': 'full'} for i in range(5)]
    out = dict((d['id'], d) for d in rp.evaluate(units, rp.parse_policy([{'every': '5m', 'keep': 2}]), NOW))
    assert [k for k, d in sorted(out.items()) if d['action'] == 'keep'] == ['b2', 'b4']


def test_weeks_are_iso_weeks_and_months_calendar_months():
    rule = rp.parse_policy({'weekly': 1, 'monthly': 1})
    jan1 = datetime.datetime(2027, 1, 1, tzinfo=UTC).timestamp()  # a Friday in ISO week 2026-W53
    assert rp.bucket(jan1, rule[0]) == '2026-W53'
    assert rp.bucket(jan1, rule[1]) == '2027-01'


@pytest.mark.parametrize('policy, words', [
    ({'daily': -1}, 'keep must be a whole number'),
    ({'daily': 'many'}, 'keep must be a whole number'),
    ([{'every': 'fortnight', 'keep': 2}], "invalid bucket size (every) 'fortnight'"),
    ([{'every': '0d', 'keep': 2}], 'invalid bucket size'),
    ([{'every': 'day', 'keep': 2, 'count': 3}], 'unknown keys: count'),
    ([{'within': '2d', 'keep': 2}], 'within cannot be combined'),
    ({'dayly': 3}, 'unknown retention policy keys: dayly'),
    ([{'every': 'day', 'keep': 1}, {'every': 'day', 'keep': 1}], 'must be unique'),
    ('daily', 'a list of rules or a mapping'),
    ([3], 'must be a mapping'),
])
def test_bad_policies_are_refused(policy, words):
    with pytest.raises(EngineError) as err:
        rp.parse_policy(policy)
    assert words in err.value.msg


def test_unknown_repository_is_refused():
    with pytest.raises(EngineError) as err:
        plan(history(NOW, days=3), repo=3)
    assert 'repository 3 of stanza main holds no backups (repositories with backups: 1)' in err.value.msg


def test_duplicate_ids_are_refused():
    with pytest.raises(EngineError) as err:
        rp.evaluate([{'id': 'a', 'time': 1}, {'id': 'a', 'time': 2}], [], NOW)
    assert 'unique' in err.value.msg
