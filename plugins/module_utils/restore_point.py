# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named restore points (`pg_create_restore_point`) and the host's registry of them.

A restore point is a WAL record; PostgreSQL stops at the first one with the requested name, so a
name is created once per timeline: a second run with the same name changes nothing. The
registry (one JSON file per name) remembers where each point is (LSN, time, timeline, system
identifier); point-in-time recovery uses it to choose the backup set without scanning WAL.
"""

import json
import os
import socket

from .pitr import NAME_RE
from .process import EngineError
from .records import utc_now, write_json_atomic

DEFAULT_REGISTRY_DIR = '/var/lib/pgops-backup/restore-points'

STATE_SQL = ("SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())::text,"
             " CASE WHEN pg_is_in_recovery() THEN NULL"
             " ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END")


def validate_name(name):
    if not NAME_RE.match(name or ''):
        raise EngineError('%r is not a usable restore point name: 1-63 letters, digits, _ . : - '
                          '(starting with a letter or digit)' % name)
    return name


def registry_path(registry_dir, name):
    return os.path.join(registry_dir, '%s.json' % validate_name(name))


def load(registry_dir, name):
    """The registry entry of a name, or None."""
    path = registry_path(registry_dir, name)
    if not registry_dir or not os.path.exists(path):
        return None
    with open(path) as handle:
        try:
            return json.load(handle)
        except ValueError:
            return None


def create_restore_point(psql, name, registry_dir=DEFAULT_REGISTRY_DIR, pgbr=None, archive=True,
                         check_mode=False, requested_by=None, reason=None, journal=None):
    """Create restore point `name` unless this cluster already has it on its current timeline.

    With archive and a PgBackRest, `pgbackrest check` then switches WAL and waits until the segment
    holding the point is in the repository, so the point is usable for recovery at once.
    Returns {'changed', 'restore_point', 'existing'}.
    """
    validate_name(name)
    row = psql.rows(STATE_SQL)[0]
    if row[0] == 't':
        raise EngineError('this cluster is in recovery (a standby): restore points are created on the primary',
                          hint='run it against the primary')
    system_id, timeline = row[1], int(row[2])
    existing = load(registry_dir, name)
    if existing and existing.get('system_identifier') == system_id and existing.get('timeline') == timeline:
        return {'changed': False, 'existing': True, 'restore_point': existing}
    if check_mode:
        return {'changed': True, 'existing': False,
                'restore_point': {'name': name, 'system_identifier': system_id, 'timeline': timeline}}
    quoted = "'%s'" % name.replace("'", "''")
    lsn, wal_file, created_at, created_us = psql.rows(
        "SELECT lsn::text, pg_walfile_name(lsn), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " (extract(epoch FROM now()) * 1000000)::bigint FROM pg_create_restore_point(%s) AS lsn" % quoted)[0]
    record = {'name': name, 'lsn': lsn, 'wal_file': wal_file, 'created_at': created_at,
              'created_us': int(created_us), 'timeline': timeline, 'system_identifier': system_id,
              'host': socket.getfqdn(), 'requested_by': requested_by, 'reason': reason,
              'recorded_at': utc_now(), 'archived': False, 'stanza': pgbr.stanza if pgbr else None}
    if registry_dir:
        if not os.path.isdir(registry_dir):
            os.makedirs(registry_dir, 0o750)
        write_json_atomic(registry_path(registry_dir, name), record)
    if archive and pgbr is not None:
        ran = pgbr.run('check')
        record['archived'] = True
        record['archive_seconds'] = round(ran.seconds, 3)
        if registry_dir:
            write_json_atomic(registry_path(registry_dir, name), record)
    if journal:
        journal('restore point %s created at LSN %s (%s, timeline %d)%s'
                % (name, lsn, created_at, timeline, ', archived' if record['archived'] else ''))
    return {'changed': True, 'existing': False, 'restore_point': record}
