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
"""

import re

from .process import EngineError

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


def select(units, now, retention_count=0, max_age_seconds=None):
    """Split one database's good dumps (any order) into (keep, prune), both newest first.
    Each unit needs 'finished_epoch' and 'name'; 'partial' (default False) marks a partial dump."""
    if retention_count is not None and int(retention_count) < 0:
        raise EngineError('retention_count must be 0 (no limit) or more, not %r' % retention_count)
    ordered = sorted(units, key=lambda u: (u['finished_epoch'], u['name']), reverse=True)
    newest_complete = next((u for u in ordered if not u.get('partial')), None)
    keep, prune = [], []
    for index, unit in enumerate(ordered):
        if index == 0 or unit is newest_complete:
            keep.append(unit)  # the newest good dump and the newest complete one survive every rule
            continue
        too_many = bool(retention_count) and index >= int(retention_count)
        too_old = max_age_seconds is not None and now - unit['finished_epoch'] > max_age_seconds
        (prune if too_many or too_old else keep).append(unit)
    return keep, prune
