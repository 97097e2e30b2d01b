# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calendar retention (grandfather-father-son): which backups a policy keeps, and why. Pure arithmetic.

A policy is a list of rules. Each rule cuts time into buckets and keeps the newest good backup of
each of its `keep` newest buckets that hold one (a pause in backups never empties a rule):

    every: day | week | month | year   calendar buckets in UTC (ISO weeks, calendar months)
    every: DURATION (90s, 10m, 6h, 2d, 1w)  fixed buckets counted from the epoch (tests, short schedules)
    within: DURATION                   every good backup newer than now - DURATION (no `keep`)

The guides' model "daily for 14 days, weekly for 8 weeks, monthly for 12 months" is
`{'daily': 14, 'weekly': 8, 'monthly': 12}` (see `parse_policy`). Besides the rules, a backup is kept
when it carries a keep mark (who and why), when it is the newest good one of its kind (never expired,
whatever the rules say) and when a kept backup depends on it (the full and diff below a kept incr).
Everything else expires, each with the reason no rule kept it.

Units are dicts with 'id' (unique), 'time' (epoch seconds, when the backup finished), and optionally
'kind' (e.g. 'full', 'diff', 'incr' or 'complete'), 'good' (default True), 'depends_on' (ids it needs),
'keep_mark' (a mark, truthy), 'candidate' (default True: whether the rules consider it; diff/incr follow
their full instead). The clock is handed in (`now`), never read here.
"""

import datetime
import re

from .process import EngineError

NAMED = (('hourly', 'hour'), ('daily', 'day'), ('weekly', 'week'), ('monthly', 'month'), ('yearly', 'year'))
CALENDAR = ('hour', 'day', 'week', 'month', 'year')
_DURATION_RE = re.compile(r'^\s*(\d+)\s*([smhdw])\s*$')
_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}
RULE_KEYS = frozenset(('every', 'keep', 'within', 'name'))


def parse_duration(value, what='duration'):
    """'90s', '10m', '6h', '2d', '1w' -> seconds (> 0)."""
    match = _DURATION_RE.match(str(value).lower()) if value not in (None, '') else None
    seconds = int(match.group(1)) * _UNITS[match.group(2)] if match else 0
    if seconds <= 0:
        raise EngineError('invalid %s %r: use a positive number with s, m, h, d or w (e.g. 36h, 2d, 1w)'
                          % (what, value), hint='calendar buckets are day, week, month or year')
    return seconds


def _rule(raw, index):
    if not isinstance(raw, dict):
        raise EngineError('retention rule %d must be a mapping like {every: day, keep: 14}, not %r' % (index + 1, raw))
    unknown = sorted(set(raw) - RULE_KEYS)
    if unknown:
        raise EngineError('retention rule %d has unknown keys: %s' % (index + 1, ', '.join(unknown)),
                          hint='a rule has every + keep, or within (and an optional name)')
    if 'within' in raw:
        if 'every' in raw or 'keep' in raw:
            raise EngineError('retention rule %d: within cannot be combined with every/keep' % (index + 1))
        seconds = parse_duration(raw['within'], 'within')
        return {'name': raw.get('name') or 'within %s' % raw['within'], 'within': seconds}
    every = str(raw.get('every', '')).strip().lower()
    keep = raw.get('keep')
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        try:
            keep = int(str(keep)) if not isinstance(keep, bool) else 0
        except ValueError:
            keep = 0
        if keep < 1:
            raise EngineError('retention rule %d: keep must be a whole number of buckets, 1 or more, not %r'
                              % (index + 1, raw.get('keep')), hint='leave the rule out to keep none of its buckets')
    if every in CALENDAR:
        size = None
    else:
        size = parse_duration(every, 'bucket size (every)')
    return {'name': raw.get('name') or '%s x%d' % (every, keep), 'every': every, 'size': size, 'keep': keep}


def parse_policy(policy):
    """A rule list, or a mapping of named rules {'daily': 14, 'weekly': 8, 'monthly': 12, 'yearly': 0,
    'within': '2d', 'rules': [...]}, -> validated rules. Empty -> [] (no calendar policy)."""
    if not policy:
        return []
    if isinstance(policy, dict):
        unknown = sorted(set(policy) - set(name for name, _every in NAMED) - {'within', 'rules'})
        if unknown:
            raise EngineError('unknown retention policy keys: %s' % ', '.join(unknown),
                              hint='use hourly, daily, weekly, monthly, yearly (counts), within (a duration) '
                                   'and rules (a list of {every, keep})')
        raw = []
        if policy.get('within'):
            raw.append({'within': policy['within'], 'name': 'within'})
        for name, every in NAMED:
            if policy.get(name) not in (None, 0, '0', ''):
                raw.append({'every': every, 'keep': policy[name], 'name': name})
        raw.extend(policy.get('rules') or [])
    elif isinstance(policy, list):
        raw = policy
    else:
        raise EngineError('a retention policy is a list of rules or a mapping, not %r' % (policy,))
    rules = [_rule(r, i) for i, r in enumerate(raw)]
    names = [r['name'] for r in rules]
    if len(set(names)) != len(names):
        raise EngineError('retention rule names must be unique: %s' % ', '.join(names))
    return rules


def bucket(epoch, rule):
    """The bucket a moment falls in, as readable text (UTC)."""
    if rule['size']:
        start = int(epoch) // rule['size'] * rule['size']
        return datetime.datetime.fromtimestamp(start, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    every = rule['every']
    if every == 'hour':
        return moment.strftime('%Y-%m-%dT%H')
    if every == 'day':
        return moment.strftime('%Y-%m-%d')
    if every == 'week':
        year, week = moment.isocalendar()[:2]
        return '%04d-W%02d' % (year, week)
    if every == 'month':
        return moment.strftime('%Y-%m')
    return moment.strftime('%Y')


def _bucket_word(rule):
    return rule['every'] if not rule['size'] else '%s bucket' % rule['every']


def evaluate(units, rules, now, newest_kinds=None):
    """Decide every unit. Returns a list (newest first) of dicts: the unit's 'id', 'kind', 'time',
    'action' ('keep' or 'expire'), 'kept_by' (rule names and other reasons) and 'reason' (why it
    expires). `newest_kinds`: the kinds whose newest good unit is never expired (default: every kind)."""
    ids = [u['id'] for u in units]
    if len(set(ids)) != len(ids):
        raise EngineError('backup ids must be unique')
    by_id = dict((u['id'], u) for u in units)
    ordered = sorted(units, key=lambda u: (u['time'], u['id']), reverse=True)
    kept = dict((u['id'], []) for u in ordered)
    why_not = dict((u['id'], []) for u in ordered)
    good = [u for u in ordered if u.get('good', True)]
    candidates = [u for u in good if u.get('candidate', True)]
    for rule in rules:
        if 'within' in rule:
            for unit in candidates:
                if now - unit['time'] <= rule['within']:
                    kept[unit['id']].append(rule['name'])
                else:
                    why_not[unit['id']].append('%s: older than %ds' % (rule['name'], rule['within']))
            continue
        seen = {}
        for unit in candidates:
            name = bucket(unit['time'], rule)
            if name in seen:
                why_not[unit['id']].append('%s: %s %s is kept by %s' % (rule['name'], _bucket_word(rule), name,
                                                                        seen[name]))
            elif len(seen) < rule['keep']:
                seen[name] = unit['id']
                kept[unit['id']].append(rule['name'])
            else:
                seen.setdefault(name, None)
                why_not[unit['id']].append('%s: %s %s is beyond the %d newest' % (
                    rule['name'], _bucket_word(rule), name, rule['keep']))
    for unit in ordered:
        if unit.get('keep_mark'):
            kept[unit['id']].append('keep mark')
        if not unit.get('good', True):
            why_not[unit['id']].insert(0, 'not a good backup (errors reported)')
    kinds = newest_kinds
    if kinds is None:
        kinds = sorted(set(u.get('kind') for u in good), key=str)
    for kind in kinds:
        newest = next((u for u in good if u.get('kind') == kind), None)
        if newest is not None:
            kept[newest['id']].append('newest good %s' % kind if kind else 'newest good backup')
    # Whatever a kept unit depends on stays (its full, its diff): repeat until nothing changes.
    changed = True
    while changed:
        changed = False
        for unit in ordered:
            if not kept[unit['id']]:
                continue
            for dep in unit.get('depends_on') or []:
                if dep in by_id and not any(k.startswith('needed by') for k in kept[dep]) and \
                        ('needed by %s' % unit['id']) not in kept[dep]:
                    kept[dep].append('needed by %s' % unit['id'])
                    changed = True
    # Dependents follow what they depend on: a non-candidate (diff/incr) is kept with its base.
    for unit in reversed(ordered):
        if unit.get('candidate', True) or kept[unit['id']]:
            continue
        bases = [d for d in unit.get('depends_on') or [] if d in by_id]
        if bases and all(kept[d] for d in bases) and unit.get('good', True):
            kept[unit['id']].append('follows %s' % bases[0])
    out = []
    for unit in ordered:
        reasons = kept[unit['id']]
        entry = {'id': unit['id'], 'kind': unit.get('kind'), 'time': unit['time'],
                 'action': 'keep' if reasons else 'expire', 'kept_by': reasons, 'reason': None}
        if not reasons:
            bases = [d for d in unit.get('depends_on') or [] if d in by_id]
            if not unit.get('candidate', True) and bases:
                entry['reason'] = 'its base %s expires' % next((d for d in bases if not kept[d]), bases[0])
            else:
                entry['reason'] = '; '.join(why_not[unit['id']]) or 'no retention rule keeps it'
        out.append(entry)
    return out
