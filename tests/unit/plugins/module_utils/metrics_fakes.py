# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host as the metrics engine sees it through the process boundary: pg_lsclusters, psql rows of
pg_stat_archiver and captured `pgbackrest info` JSON; data directories and records are real files."""

from __future__ import annotations

import json
import os

from ansible_collections.pgops.backup.plugins.module_utils.postgres import FIELD_SEP, RECORD_SEP
from ansible_collections.pgops.backup.tests.unit.fakes import FakeProcess, fixture

STOP = 1795252301          # stop time of the full backup in info-ok-*.json
NOW = STOP + 3600          # one hour later
ARCHIVE_COMMAND = 'pgbackrest --stanza=main archive-push %p'
# pg_stat_archiver of a healthy primary: 9 archived, none failed, write position 0/A000000.
HEALTHY = ['f', 'on', ARCHIVE_COMMAND, '16777216', '9', '000000010000000000000009', str(NOW - 40),
           '0', '', '', 'f', '167772160']
# Archiving broken: the last 3 attempts failed after the last success, 4 WAL files wait.
FAILING = ['f', 'on', ARCHIVE_COMMAND, '16777216', '9', '000000010000000000000009', str(NOW - 300),
           '3', '00000001000000000000000A', str(NOW - 20), 't', '234881024']


def psql_out(*rows):
    return ''.join(FIELD_SEP.join(row) + RECORD_SEP for row in rows)


def data_dir(tmp_path, ready=(), done=(), name='17-main'):
    """A data directory whose archive_status holds `ready` (name, age seconds) and `done` files."""
    path = tmp_path / name
    status = path / 'pg_wal' / 'archive_status'
    status.mkdir(parents=True)
    for segment, age in ready:
        f = status / ('%s.ready' % segment)
        f.write_text('')
        os.utime(str(f), (NOW - age, NOW - age))
    for segment in done:
        (status / ('%s.done' % segment)).write_text('')
    return str(path)


def host(datadir, info=None, row=None, status='online', info_rc=0, psql_err=None):
    fake = FakeProcess()
    fake.on('--no-header', out='17  main    5432 %s postgres %s /var/log/postgresql/postgresql-17-main.log\n'
            % (status, datadir))
    if psql_err:
        fake.on('/usr/bin/psql', rc=2, err=psql_err)
    else:
        fake.on('/usr/bin/psql', out=psql_out(row or HEALTHY))
    if info_rc:
        fake.on('info', rc=info_rc, out='P00  ERROR: [103]: unable to find a valid repository:\n'
                '            repo1: [PathOpenError] unable to list file info for path \'/var/lib/pgbackrest/backup\'\n')
    else:
        fake.on('info', out=fixture(info or 'info-ok-2.55.1.json'))
    return fake


def write_record(record_dir, name, **data):
    record_dir.mkdir(exist_ok=True)
    (record_dir / ('%s.json' % name)).write_text(json.dumps(data))
