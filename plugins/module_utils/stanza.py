# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring a pgBackRest stanza to a wanted state; reads `info` first so that a second run changes nothing."""

import re

from .pgbackrest import STANZA_MISSING_CODES
from .process import EngineError

UP_TO_DATE_MARKER = 'already up to date'
# pgBackRest puts the stanza name in paths (archive/NAME, backup/NAME, lock files), in an ini section
# ([NAME]) and in archive_command; this collection also puts it in systemd unit names and record
# names. Strict: what all of those accept without quoting. Leading letter, digit or '_' (never '-',
# which a command line would read as an option; never '.', which makes hidden or relative paths).
STANZA_NAME_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$')
_UPGRADED_REPO_RE = re.compile(r"stanza-upgrade for stanza '[^']+' on (repo\d+)")
_UP_TO_DATE_REPO_RE = re.compile(r"stanza '[^']+' on (repo\d+) is already up to date")


def validate_stanza_name(name, what='stanza name'):
    """Return `name` when pgBackRest, an ini section, archive_command and a systemd unit name all
    take it as it is; raise EngineError (code 'stanza-name') before anything is run otherwise."""
    if name is None:
        return None
    if not isinstance(name, str) or not STANZA_NAME_RE.match(name) or '..' in name:
        raise EngineError(
            'invalid %s %r: use 1 to 64 letters, digits, "_", "-" and ".", starting with a letter, digit or "_"'
            % (what, name), code='stanza-name',
            hint='rename the stanza (e.g. main or db1-prod); a quote, space, "/", "[" or "]" would reach '
                 'archive_command, the pgBackRest configuration and systemd unit names')
    return name


def upgrade_changed(output):
    """True when stanza-upgrade changed at least one repository (each repository reports on its own)."""
    repos = set(_UPGRADED_REPO_RE.findall(output))
    if not repos:
        return UP_TO_DATE_MARKER not in output
    return bool(repos - set(_UP_TO_DATE_REPO_RE.findall(output)))


def ensure_stanza(pgbr, state='present', force=False, check=False, check_mode=False):
    """Return {'changed', 'actions', 'before', 'after', 'check'}; raise EngineError before changing
    anything when the request cannot be honoured."""
    before = pgbr.stanza_info()
    actions = []
    changed = False

    if state == 'absent':
        if not before['exists']:
            return _result(pgbr, False, actions, before, before)
        if not force:
            raise EngineError(
                'refusing to delete stanza %r: it holds %d backup(s) and the WAL archive' % (pgbr.stanza, before['backup_count']),
                hint='set force=true to delete the stanza and every backup in it')
        actions = ['stop', 'stanza-delete', 'start']
        if not check_mode:
            pgbr.run('stop')
            pgbr.run('stanza-delete', '--force')
            pgbr.run('start')
        return _result(pgbr, True, actions, before, None if check_mode else pgbr.stanza_info())

    # With several repositories the stanza status is "different across repos" (exists) while a
    # newly added repository still lacks the stanza: stanza-create creates it there.
    missing_repo = any(r['status_code'] in STANZA_MISSING_CODES for r in before['repos'])
    if state == 'present' and (not before['exists'] or missing_repo):
        actions.append('stanza-create')
        changed = True
        if not check_mode:
            pgbr.run('stanza-create')
    elif state == 'upgraded':
        if not before['exists']:
            raise EngineError('stanza %r does not exist, so it cannot be upgraded' % pgbr.stanza,
                              hint='create it with state=present')
        if check_mode:
            actions.append('stanza-upgrade (if the cluster changed)')
        else:
            output = pgbr.run('stanza-upgrade', '--log-level-console=info')
            if upgrade_changed(output.stdout + output.stderr):
                actions.append('stanza-upgrade')
                changed = True

    check_result = None
    if check:
        if check_mode:
            actions.append('check (skipped in check mode: it switches WAL)')
        else:
            ran = pgbr.run('check')
            check_result = {'ok': True, 'seconds': round(ran.seconds, 3)}
    after = before if not changed or check_mode else pgbr.stanza_info()
    return _result(pgbr, changed, actions, before, after, check_result)


def _result(pgbr, changed, actions, before, after, check_result=None):
    return {'changed': changed, 'actions': actions, 'before': before, 'after': after,
            'check': check_result, 'stanza': pgbr.stanza}
