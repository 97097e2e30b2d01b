# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL as the engine sees it: clusters on the host (postgresql-common) and SQL through psql.

psql over the local socket as the cluster owner keeps the engine free of client libraries and
passwords; queries use unit/record separators so values may contain any printable text.
"""

import os

from .process import EngineError

FIELD_SEP = '\x1f'
RECORD_SEP = '\x1e'
# The OS user that runs pgBackRest and the PostgreSQL programs when the engine runs as root.
TOOL_USER = 'postgres'


def tool_user(requested=None, euid=None):
    """The one run-as rule of the engine: who runs pgBackRest, psql, pg_dump, pg_restore and gpg.

    Started as root (directly, by sudo or by a root systemd unit) the programs run as `requested`
    or, when none is given, as postgres: pgBackRest run as root finds no primary (libpq connects as
    role "root"), leaves root-owned files in the repository, spool, log and lock paths that break
    the postgres-run archive_command, and newer releases refuse root outright. So root itself is
    refused. Started as another user the programs run as that user (`requested` cannot be honoured
    without root and is ignored, as the Runner does)."""
    euid = os.geteuid() if euid is None else euid
    if requested == 'root' or requested == '0':
        raise EngineError('refusing to run pgBackRest and the PostgreSQL programs as %r' % requested,
                          code='run-as-root',
                          hint='omit run_as/--run-as (postgres is the default) or name the cluster owner, '
                               'e.g. --run-as postgres')
    if euid != 0:
        return requested
    return requested or TOOL_USER


def conninfo_dbname(dbname):
    """A database name as a libpq connection string, the only form in which the engine hands a
    database name to psql, pg_dump, pg_restore or pg_dumpall: a name like 'host=x' or '-h evil' is
    then only ever a name. Refuses what no PostgreSQL database name can be."""
    if not isinstance(dbname, str) or not dbname or '\x00' in dbname:
        raise EngineError('invalid database name %r' % (dbname,), code='dbname',
                          hint='give the name of an existing database (a non-empty string without NUL)')
    return "dbname='%s'" % dbname.replace('\\', '\\\\').replace("'", "\\'")


def parse_lsclusters(text):
    """`pg_lsclusters --no-header` -> [{version, name, port, status, owner, data_directory, log}]."""
    clusters = []
    for line in (text or '').splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        clusters.append({
            'version': fields[0],
            'name': fields[1],
            'port': int(fields[2]),
            'status': fields[3],
            'owner': fields[4],
            'data_directory': fields[5],
            'log': fields[6] if len(fields) > 6 else None,
        })
    return clusters


def list_clusters(runner):
    return parse_lsclusters(runner.run([runner.binary('pg_lsclusters', 'postgresql-common'), '--no-header']).stdout)


def find_cluster(clusters, version=None, name='main'):
    matches = [c for c in clusters if c['name'] == name and (not version or c['version'] == str(version))]
    if len(matches) != 1:
        have = ', '.join('%s/%s' % (c['version'], c['name']) for c in clusters) or 'none'
        raise EngineError('expected exactly one PostgreSQL cluster %s/%s on this host, found: %s'
                          % (version or '*', name, have),
                          hint='set the PostgreSQL version and cluster name explicitly')
    return matches[0]


def parse_rows(text):
    text = (text or '').rstrip('\n')
    if not text:
        return []
    return [record.lstrip('\n').split(FIELD_SEP) for record in text.split(RECORD_SEP) if record.strip('\n') != '']


class Psql(object):
    """Run SQL with psql as the cluster owner on the local socket."""

    def __init__(self, runner, port=5432, dbname='postgres', host=None):
        self.runner = runner
        self.port = port
        self.dbname = dbname
        self.host = host

    def argv(self, sql, dbname=None):
        argv = [self.runner.binary('psql', 'postgresql-client'), '-X', '-A', '-t', '-q',
                '-v', 'ON_ERROR_STOP=1', '-F', FIELD_SEP, '-R', RECORD_SEP,
                '-p', str(self.port), '-d', conninfo_dbname(dbname or self.dbname), '-c', sql]
        if self.host:
            argv[1:1] = ['-h', self.host]
        return argv

    def rows(self, sql, dbname=None):
        return parse_rows(self.runner.run(self.argv(sql, dbname), what='psql').stdout)

    def value(self, sql, dbname=None):
        rows = self.rows(sql, dbname)
        return rows[0][0] if rows else None

    def is_in_recovery(self):
        return self.value('SELECT pg_is_in_recovery()') == 't'

    def server_version_num(self):
        return int(self.value('SHOW server_version_num'))

    def pending_restart(self):
        return [r[0] for r in self.rows('SELECT name FROM pg_settings WHERE pending_restart ORDER BY name')]

    def postmaster_start_time(self):
        return self.value("SELECT extract(epoch FROM pg_postmaster_start_time())::text")

    def settings(self, names):
        quoted = ', '.join("'%s'" % n.replace("'", "''") for n in names)
        return dict((r[0], r[1]) for r in self.rows(
            'SELECT name, setting FROM pg_settings WHERE name IN (%s)' % quoted))
