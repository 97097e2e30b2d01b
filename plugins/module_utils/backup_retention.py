# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calendar retention for pgBackRest repositories, and keep marks on backups.

Design: pgBackRest keeps doing the expiring. Its own count retention (repoN-retention-full) is set
high by the pgbackrest role when a calendar policy is configured, so that its automatic expire after
each backup never removes a set on its own; this module reads `pgbackrest info --output=json`,
decides per repository with retention_policy which full backups the policy drops, and runs
`pgbackrest expire --set=LABEL --repo=N` for exactly those. pgBackRest then removes the set with every
backup that depends on it and expires only the WAL older than the oldest remaining backup, so every
kept backup keeps its WAL and PITR from the oldest kept backup onward stays possible.

Rules apply to good full backups; a diff or incr follows its full (kept with it, expired with it).
A keep mark is the backup annotation `pgops-keep` ("USER at TIME: REASON"), set and removed with
`pgbackrest annotate`; a marked backup (and whatever it depends on) is never expired by the policy.
The newest good full, diff and incr of a repository are never expired.
"""

import json

from . import clock
from . import retention_policy as policy_mod
from .process import EngineError

KEEP_KEY = 'pgops-keep'
ANNOTATE_MIN_VERSION = (2, 41, 0)
MAX_REASON = 200


def keep_value(user, reason, now=None):
    """The annotation value of a keep mark: who, when and why."""
    reason = (reason or '').strip()
    if not reason:
        raise EngineError('a keep mark needs a reason (a ticket, an audit, a legal hold)',
                          hint='pass --reason TEXT (playbook: -e reason=TEXT)')
    if len(reason) > MAX_REASON or '\n' in reason or '\r' in reason:
        raise EngineError('the keep reason must be one line of at most %d characters, not %d characters'
                          % (MAX_REASON, len(reason)), hint='put the details in the ticket and name it here')
    if not user or not str(user).strip():
        raise EngineError('a keep mark needs the name of who asks for it', hint='pass --user NAME')
    stamp = clock.utc_now_text() if now is None else now
    return '%s at %s: %s' % (str(user).strip(), stamp, reason)


def units_of_repo(backups):
    """pgBackRest backup summaries of one repository -> retention_policy units."""
    labels = set(b['label'] for b in backups)
    units = []
    for b in backups:
        deps = []
        for ref in [b.get('prior')] + list(b.get('reference') or []):
            if ref and ref in labels and ref not in deps:
                deps.append(ref)
        annotation = b.get('annotation') or {}
        units.append({'id': b['label'], 'time': b.get('stop') or b.get('start') or 0, 'kind': b.get('type'),
                      'good': not b.get('error'), 'depends_on': deps, 'candidate': b.get('type') == 'full',
                      'keep_mark': annotation.get(KEEP_KEY)})
    return units


def backups_by_repo(stanza_entry):
    """{repo key: [backup summaries]} of one raw `info --output=json` stanza entry (references kept)."""
    from .pgbackrest import summarize_stanza
    summary = summarize_stanza(stanza_entry)
    refs = dict((b.get('label'), b.get('reference') or []) for b in stanza_entry.get('backup') or [])
    repos = {}
    for b in summary['backups']:
        item = dict(b, reference=refs.get(b['label'], []))
        repos.setdefault(b['repo_key'] or 1, []).append(item)
    return repos


def plan_stanza(stanza_entry, rules, now, repo=None):
    """The decision for every backup of one stanza (one repository with `repo`), per repository."""
    repos = backups_by_repo(stanza_entry)
    if repo is not None and int(repo) not in repos:
        known = ', '.join(str(k) for k in sorted(repos)) or 'none'
        raise EngineError('repository %s of stanza %s holds no backups (repositories with backups: %s)'
                          % (repo, stanza_entry.get('name'), known),
                          hint='name a configured repository with --repo, or leave it out for all of them')
    plans = []
    for key in sorted(repos):
        if repo is not None and key != int(repo):
            continue
        backups = dict((b['label'], b) for b in repos[key])
        decisions = policy_mod.evaluate(units_of_repo(repos[key]), rules, now,
                                        newest_kinds=('full', 'diff', 'incr'))
        for d in decisions:
            b = backups[d['id']]
            d.update(label=d.pop('id'), type=d.pop('kind'), stop=b.get('stop'), repo=key,
                     keep_mark=(b.get('annotation') or {}).get(KEEP_KEY))
        # pgBackRest expires a set with its dependents: only fulls (and orphaned diffs) are named.
        expire_sets = [d['label'] for d in reversed(decisions) if d['action'] == 'expire' and
                       not any(dep in [x['label'] for x in decisions if x['action'] == 'expire']
                               for dep in _deps(backups[d['label']]))]
        plans.append({'stanza': stanza_entry.get('name'), 'repo': key, 'backups': decisions,
                      'expire_sets': expire_sets,
                      'kept': [d['label'] for d in decisions if d['action'] == 'keep'],
                      'expired': [d['label'] for d in decisions if d['action'] == 'expire']})
    return plans


def _deps(backup):
    return [r for r in [backup.get('prior')] + list(backup.get('reference') or []) if r]


def _raw_info(pgbr, stanza):
    result = pgbr.run('info', '--output=json', stanza=stanza)
    try:
        data = json.loads(result.stdout or '[]', strict=False)
    except ValueError as exc:
        raise EngineError('pgbackrest info did not return JSON: %s' % exc, stdout=result.stdout)
    found = [e for e in data if e.get('name') == stanza] if isinstance(data, list) else []
    if not found:
        raise EngineError('stanza %r is not defined in the pgBackRest configuration' % stanza,
                          hint='name a stanza of pgbackrest.conf with --stanza')
    return found[0]


def apply(pgbr, policy, repo=None, dry_run=False, now=None, say=None):
    """Apply a calendar policy to pgbr's stanza. Returns {'plans': [...], 'expired': [...], 'dry_run'}."""
    rules = policy_mod.parse_policy(policy)
    if not rules:
        raise EngineError('no calendar retention policy given: nothing would keep any backup but the newest',
                          hint='give rules, e.g. {"daily": 14, "weekly": 8, "monthly": 12}')
    now = clock.now() if now is None else now
    entry = _raw_info(pgbr, pgbr.stanza)
    plans = plan_stanza(entry, rules, now, repo=repo)
    expired = []
    for plan in plans:
        for label in plan['expire_sets']:
            if dry_run:
                continue
            if say:
                say('expiring backup set %s from repository %d' % (label, plan['repo']))
            pgbr.run('expire', '--set=%s' % label, '--repo=%d' % plan['repo'], '--log-level-console=info')
            expired.append({'repo': plan['repo'], 'set': label})
    return {'stanza': pgbr.stanza, 'dry_run': bool(dry_run), 'plans': plans, 'expired': expired,
            'changed': bool(expired) or (dry_run and any(p['expire_sets'] for p in plans))}


def _find(entry, label, repo):
    repos = backups_by_repo(entry)
    holders = [k for k in sorted(repos) if any(b['label'] == label for b in repos[k])]
    if repo is not None:
        holders = [k for k in holders if k == int(repo)]
    if not holders:
        raise EngineError('backup set %r is not in %s of stanza %s' % (
            label, 'repository %s' % repo if repo is not None else 'any repository', entry.get('name')),
            hint='`pgops-backup info --stanza %s` lists the backup labels' % entry.get('name'))
    return [(k, next(b for b in repos[k] if b['label'] == label)) for k in holders]


def mark(pgbr, label, repo=None, user=None, reason=None, release=False, check_mode=False):
    """Set (or with release=True remove) the keep mark of a backup set in every repository that holds
    it (or in `repo`). Returns {'changed', 'marks': [{repo, label, before, after}]}."""
    value = None if release else keep_value(user, reason)
    if pgbr.version() < ANNOTATE_MIN_VERSION:
        raise EngineError('pgBackRest %s cannot annotate backups (2.41 or later is needed for keep marks)'
                          % pgbr.version_string(), hint='upgrade pgBackRest on this host')
    entry = _raw_info(pgbr, pgbr.stanza)
    marks = []
    for key, backup in _find(entry, label, repo):
        before = (backup.get('annotation') or {}).get(KEEP_KEY)
        if release and before is None:
            marks.append({'repo': key, 'label': label, 'before': None, 'after': None, 'changed': False})
            continue
        if not check_mode:
            # An empty value removes the key (pgBackRest annotate).
            pgbr.run('annotate', '--set=%s' % label, '--repo=%d' % key,
                     '--annotation=%s=%s' % (KEEP_KEY, '' if release else value))
        marks.append({'repo': key, 'label': label, 'before': before, 'after': value, 'changed': True})
    return {'changed': any(m['changed'] for m in marks), 'marks': marks}
