# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL as the engine sees it: clusters on the host (postgresql-common) and SQL through psql.

psql over the local socket as the cluster owner keeps the engine free of client libraries and
passwords; queries use unit/record separators so values may contain any printable text.
"""

from .process import EngineError

FIELD_SEP = '\x1f'
RECORD_SEP = '\x1e'


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
                '-p', str(self.port), '-d', dbname or self.dbname, '-c', sql]
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
