# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take a pgBackRest backup and report exactly which backup it produced."""

import time

from .process import EngineError

BACKUP_TYPES = ('full', 'diff', 'incr')


def backup_options(backup_type, annotations=None, repo=None, start_fast=None):
    if backup_type not in BACKUP_TYPES:
        raise EngineError('backup type must be one of %s, not %r' % (', '.join(BACKUP_TYPES), backup_type))
    options = ['--type=%s' % backup_type]
    for key, value in sorted((annotations or {}).items()):
        options.append('--annotation=%s=%s' % (key, value))
    if repo:
        options.append('--repo=%d' % int(repo))
    if start_fast is not None:
        options.append('--start-fast' if start_fast else '--no-start-fast')
    return options


def run_backup(pgbr, backup_type='incr', annotations=None, repo=None, start_fast=None, stream=False):
    """Run one backup. Returns the new backup's summary from `info` (its real type: pgBackRest turns
    an incr without a prior full into a full) plus the wall time of the command."""
    options = backup_options(backup_type, annotations, repo, start_fast)
    before = pgbr.stanza_info()
    if not before['exists']:
        raise EngineError('stanza %r has not been created in the repository' % pgbr.stanza,
                          hint='run pgops.backup.pgbackrest_stanza with state=present first')
    started = time.time()
    pgbr.run('backup', '--log-level-console=info', *options, stream=stream)
    seconds = round(time.time() - started, 3)
    after = pgbr.stanza_info()
    known = set(b['label'] for b in before['backups'])
    new = [b for b in after['backups'] if b['label'] not in known]
    if not new:
        raise EngineError('pgbackrest backup exited 0 but no new backup appears in info',
                          hint='run `pgbackrest info --stanza=%s` and read /var/log/pgbackrest' % pgbr.stanza)
    return {'backup': new[-1], 'requested_type': backup_type, 'seconds': seconds, 'stanza': after}
