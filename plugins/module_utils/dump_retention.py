# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which logical dumps to delete: by count and by age, read from the manifests (not file mtimes).

Rules, applied to the good dumps of one database:
- retention_count N (0 = no limit): dumps beyond the N newest are deleted;
- retention_max_age (None = no limit): dumps that finished longer ago than this are deleted;
- the newest good dump is never deleted, whatever the settings (all dumps older than the maximum
  age still leave the newest one; `find -mtime +30 -delete` would leave nothing);
- nor is the newest good *complete* dump: a partial dump (schema only, tables or schemas excluded,
  see dump_manifest.partial_reasons) never counts as the last good one, so a run with
  --schema-only cannot push the last full copy of the data out.
Both limits apply when both are set. Only directories with a valid, ok manifest are considered:
unknown files and work in progress are never touched here.

Calendar policy (issue 17): with `rules` (retention_policy.parse_policy), the count and age give way
to the grandfather-father-son rules (daily/weekly/monthly/yearly or `every: DURATION`), with the
same two guarantees. Keep marks: a dump set DATABASE/STAMP/ with a file DATABASE/STAMP.pgops-keep.json
beside it (who, when, why) is never deleted by any rule; removing the file releases it.
"""

import json
import os
import re

from . import clock
from . import dump_manifest as layout
from . import retention_policy
from .process import EngineError

KEEP_SUFFIX = '.pgops-keep.json'

_AGE_RE = re.compile(r'^\s*(\d+)\s*([smhdw]?)\s*$')
_UNITS = {'': 86400, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}


def parse_age(value):
    """'14d', '36h', '90m', '2w', '3600s' or a plain number of days -> seconds; None/''/0 -> None."""
    if value in (None, '', 0, '0'):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 86400) if value > 0 else None
    match = _AGE_RE.match(str(value).lower())
    if not match:
        raise EngineError('invalid maximum age %r: use a number with s, m, h, d or w (e.g. 14d, 36h)' % (value,))
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    return seconds or None


def keep_mark_path(unit_path):
    """Where the keep mark of a dump set lives: beside its directory (never inside the proven set)."""
    return os.path.normpath(unit_path) + KEEP_SUFFIX


def read_keep_mark(unit_path):
    """The keep mark of a dump set ({'user', 'at', 'reason'}) or None."""
    if not unit_path:
        return None
    try:
        with open(keep_mark_path(unit_path)) as handle:
            mark = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) else {'reason': str(mark)}


def set_keep_mark(unit_path, user, reason, release=False):
    """Mark (or release) a dump set. Returns (changed, mark before)."""
    if not os.path.isdir(unit_path):
        raise EngineError('%s is not a dump set directory' % unit_path,
                          hint='name a DATABASE/STAMP directory under the dump destination')
    before = read_keep_mark(unit_path)
    path = keep_mark_path(unit_path)
    if release:
        if before is None and not os.path.exists(path):
            return False, None
        os.unlink(path)
        return True, before
    reason = (reason or '').strip()
    if not reason or '\n' in reason or len(reason) > 200:
        raise EngineError('a keep mark needs a reason of one line (at most 200 characters), not %r' % reason,
                          hint='pass --reason TEXT (a ticket, an audit, a legal hold)')
    if not user or not str(user).strip():
        raise EngineError('a keep mark needs the name of who asks for it', hint='pass --user NAME')
    if before and before.get('user') == str(user).strip() and before.get('reason') == reason:
        return False, before  # the same mark again: idempotent
    mark = {'user': str(user).strip(), 'at': clock.utc_now_text(), 'reason': reason}
    tmp = path + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(mark, handle, sort_keys=True)
    os.rename(tmp, path)
    return True, before


def _describe_mark(mark):
    return None if mark is None else '%s at %s: %s' % (mark.get('user'), mark.get('at'), mark.get('reason'))


def mark_set(unit_path, user, reason, release=False, check_mode=False):
    """Mark or release a dump set, as the host command and the module do it (check mode changes nothing).
    Returns {'set', 'changed', 'before', 'after'} with the marks as one line of text."""
    unit_path = os.path.normpath(unit_path or '')
    if not layout.STAMP_RE.match(os.path.basename(unit_path)) or not os.path.isdir(unit_path):
        raise EngineError('%s is not a dump set (DATABASE/STAMP directory)' % unit_path,
                          hint='`ls DESTINATION/DATABASE` lists the dump sets')
    before = read_keep_mark(unit_path)
    if check_mode:
        if release:
            changed = before is not None
        else:
            changed = not (before and before.get('user') == (user or '').strip()
                           and before.get('reason') == (reason or '').strip())
        after = None if release else ({'user': (user or '').strip(), 'at': 'now', 'reason': (reason or '').strip()}
                                      if changed else before)
    else:
        changed, before = set_keep_mark(unit_path, user, reason, release=release)
        after = read_keep_mark(unit_path)
    return {'set': unit_path, 'changed': changed, 'before': _describe_mark(before), 'after': _describe_mark(after)}


def select(units, now, retention_count=0, max_age_seconds=None, rules=None):
    """Split one database's good dumps (any order) into (keep, prune), both newest first.
    Each unit needs 'finished_epoch' and 'name'; 'partial' (default False) marks a partial dump.
    A unit with a keep mark beside its 'path' is always kept. With `rules` (a parsed calendar policy)
    the count and age are not used."""
    if retention_count is not None and int(retention_count) < 0:
        raise EngineError('retention_count must be 0 (no limit) or more, not %r' % retention_count)
    ordered = sorted(units, key=lambda u: (u['finished_epoch'], u['name']), reverse=True)
    if rules:
        decisions = decide(ordered, now, rules)
        keep = [u for u, d in zip(ordered, decisions) if d['action'] == 'keep']
        prune = [u for u, d in zip(ordered, decisions) if d['action'] == 'expire']
        return keep, prune
    newest_complete = next((u for u in ordered if not u.get('partial')), None)
    keep, prune = [], []
    for index, unit in enumerate(ordered):
        if index == 0 or unit is newest_complete or read_keep_mark(unit.get('path')):
            keep.append(unit)  # the newest good dump, the newest complete one and marked ones survive every rule
            continue
        too_many = bool(retention_count) and index >= int(retention_count)
        too_old = max_age_seconds is not None and now - unit['finished_epoch'] > max_age_seconds
        (prune if too_many or too_old else keep).append(unit)
    return keep, prune


def decide(units, now, rules):
    """The calendar policy over one database's good dumps (newest first): one decision per unit, in
    the order given ({'id', 'action', 'kept_by', 'reason', ...}). Partial dumps are not candidates of
    the rules (they never stand in for a complete copy); the newest good and newest complete survive."""
    ordered = sorted(units, key=lambda u: (u['finished_epoch'], u['name']), reverse=True)
    policy_units = [{'id': u['name'], 'time': u['finished_epoch'],
                     'kind': 'partial' if u.get('partial') else 'complete',
                     'candidate': not u.get('partial'), 'keep_mark': read_keep_mark(u.get('path'))}
                    for u in ordered]
    evaluated = retention_policy.evaluate(policy_units, rules, now, newest_kinds=('complete',))
    decisions = dict((d['id'], d) for d in evaluated)
    if ordered and decisions[ordered[0]['name']]['action'] == 'expire':
        newest = decisions[ordered[0]['name']]
        newest.update(action='keep', kept_by=['newest good dump'], reason=None)
    return [decisions[u['name']] for u in ordered]
