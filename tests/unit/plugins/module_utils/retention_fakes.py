# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A generated pgBackRest history for the retention tests: `pgbackrest info --output=json` of one
stanza with daily fulls, a diff and incrementals a day, in several repositories (the shape of the
captured fixtures in tests/unit/fixtures, e.g. info-chain-2.55.1.json)."""

from __future__ import annotations

import copy
import datetime
import json

from ansible_collections.pgops.backup.tests.unit.fakes import info_doc

DAY = 86400
UTC = datetime.timezone.utc


def label_of(epoch):
    return datetime.datetime.fromtimestamp(epoch, UTC).strftime('%Y%m%d-%H%M%S')


def _backup(label, kind, start, prior=None, reference=(), repo=1, annotation=None, error=False, wal=1):
    doc = {
        'archive': {'start': '0000000100000000%08X' % wal, 'stop': '0000000100000000%08X' % wal},
        'backrest': {'format': 5, 'version': '2.55.1'},
        'database': {'id': 1, 'repo-key': repo},
        'error': error,
        'info': {'delta': 100, 'repository': {'delta': 10, 'size': 20}, 'size': 1000},
        'label': label, 'lsn': {'start': '0/1', 'stop': '0/2'},
        'prior': prior, 'reference': list(reference) if reference else None,
        'timestamp': {'start': start, 'stop': start + 60}, 'type': kind,
    }
    if annotation:
        doc['annotation'] = dict(annotation)
    return doc


def history(end, days=365, repos=(1,), hour=1, with_diff_incr=True, marks=None, errors=()):
    """Backups of `days` days ending on the day of `end`: a full at HOUR:00 every day, then (with
    with_diff_incr) an incr at HOUR+6, a diff at HOUR+12 and an incr on top of it at HOUR+18.
    marks: {full label: annotation value}; errors: full labels whose backup reported errors."""
    marks = marks or {}
    backups = []
    first_day = (int(end) // DAY - days + 1) * DAY
    wal = 1
    for repo in repos:
        for n in range(days):
            start = first_day + n * DAY + hour * 3600
            full = label_of(start) + 'F'
            ann = {'pgops-keep': marks[full]} if full in marks else None
            backups.append(_backup(full, 'full', start, repo=repo, annotation=ann, error=full in errors, wal=wal))
            wal += 1
            if not with_diff_incr:
                continue
            incr1 = '%s_%sI' % (full, label_of(start + 6 * 3600))
            diff = '%s_%sD' % (full, label_of(start + 12 * 3600))
            incr2 = '%s_%sI' % (full, label_of(start + 18 * 3600))
            for label, kind, offset, prior, ref in (
                    (incr1, 'incr', 6, full, [full]), (diff, 'diff', 12, full, [full]),
                    (incr2, 'incr', 18, diff, [full, diff])):
                if start + offset * 3600 + 60 > end:
                    continue
                backups.append(_backup(label, kind, start + offset * 3600, prior, ref, repo=repo, wal=wal))
                wal += 1
    doc = copy.deepcopy(info_doc('info-chain-2.55.1.json'))
    doc[0]['backup'] = [b for b in backups if b['timestamp']['stop'] <= end]
    doc[0]['repo'] = [{'cipher': 'none', 'key': k, 'status': {'code': 0, 'message': 'ok'}} for k in repos]
    return doc


def info_text(doc):
    return json.dumps(doc, separators=(',', ':'), sort_keys=True)
