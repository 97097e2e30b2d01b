# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scratch servers of restore drills, built on scratch.ScratchInstance.

- DrillInstance: a pgBackRest backup restored into its own data directory and port (what
  ScratchInstance does), started with a few more command-line settings so that what the backup's
  postgresql.auto.conf says about memory cannot stop a throwaway copy from starting.
- EmptyInstance: an empty cluster made with initdb (for the pg_dump source), configured the same
  way: own data directory, own port, Unix socket only, archive_mode=off, marker file.
- DrillRestoreJob: dump_restore.RestoreJob for a scratch cluster: its maintenance database is
  template1 (the dump set may hold `postgres`, which is then dropped and restored), and the
  globals' tablespaces are created inside the scratch instance, never at the production paths.

Plain Python, every host interaction through a process.Runner (and the dump files read directly).
"""

import json
import os
import re
import tempfile

from .dump_restore import RestoreJob, psql_file_argv
from .pg_dump import Client, check_result
from .pgserver import pg_binary
from .process import EngineError
from .records import utc_now
from .scratch import DEFAULT_BASE_DIR, DEFAULT_SOCKET_DIR, HBA, ScratchInstance

DRILL_PURPOSE = 'restore drill'
MAINTENANCE_DB = 'template1'
# Settings on the server command line win over the restored postgresql.auto.conf.
DRILL_SERVER_SETTINGS = (('shared_buffers', '128MB'), ('huge_pages', 'off'))

_TABLESPACE_RE = re.compile(r"^(CREATE TABLESPACE\s+(\"(?:[^\"]|\"\")+\"|\S+)\s.*\bLOCATION\s+)'((?:[^']|'')*)'(.*)$")


class DrillInstance(ScratchInstance):
    """A scratch instance restored from pgBackRest for a drill (see the module docstring)."""

    def server_options(self):
        base = super(DrillInstance, self).server_options()
        return base + ''.join(' -c %s=%s' % kv for kv in DRILL_SERVER_SETTINGS)


class _NoRepository(object):
    """Stands in for PgBackRest where ScratchInstance names the stanza: an initdb cluster has none."""
    stanza = None
    config = None
    binary = None


class EmptyInstance(DrillInstance):
    """An empty scratch cluster made with initdb, for restoring a pg_dump set."""

    def __init__(self, runner, version, name='scratch', base_dir=DEFAULT_BASE_DIR, port=None,
                 socket_dir=DEFAULT_SOCKET_DIR, **kwargs):
        super(EmptyInstance, self).__init__(runner, _NoRepository(), version, name=name, base_dir=base_dir,
                                            port=port, socket_dir=socket_dir, **kwargs)

    def initdb_argv(self):
        return [pg_binary(self.runner, self.version, 'initdb'), '-D', self.data_directory, '--encoding=UTF8',
                '--no-locale', '--data-checksums', '--auth-local=peer', '--auth-host=reject']

    def create_empty(self, purpose=DRILL_PURPOSE, source=None):
        """Marker, initdb, configuration. Nothing of this can reach the production cluster."""
        if self.exists():
            raise EngineError('scratch instance %s already exists (%s)' % (self.name, self.data_directory),
                              hint='remove it first (`pgops-backup restore-test --remove-kept`)')
        port = self.choose_port()
        self.runner.run(['mkdir', '-p', '-m', '0700', self.base_dir], what='mkdir')
        marker = {'name': self.name, 'created_at': utc_now(), 'port': port, 'stanza': None, 'version': self.version,
                  'data_directory': self.data_directory, 'purpose': purpose, 'source': source}
        self._write(self.marker_file, json.dumps(marker, indent=2, sort_keys=True) + '\n')
        result = self.runner.run(self.initdb_argv(), check=False)
        if result.rc != 0:
            raise EngineError('initdb of the scratch instance %s failed' % self.name, argv=result.argv, rc=result.rc,
                              stdout=result.stdout, stderr=result.stderr)
        self.configure_empty()
        return result

    def configure_empty(self):
        """Settings appended to initdb's postgresql.conf (the last one wins), peer-only pg_hba.conf."""
        settings = [
            ('port', str(self.port)),
            ('listen_addresses', "'%s'" % self.listen_addresses),
            ('unix_socket_directories', "'%s'" % self.socket_dir),
            ('archive_mode', 'off'),
            ('archive_command', "''"),
            ('logging_collector', 'off'),
            ('lc_messages', "'C'"),
            ('log_timezone', "'UTC'"),
            ('log_line_prefix', "'%m [%p] '"),
            ('cluster_name', "'pgops-scratch-%s'" % self.name),
            ('shared_buffers', "'128MB'"),
            ('max_wal_size', "'1GB'"),
            ('max_replication_slots', '0'),
            # A throwaway copy: durability buys nothing here, speed does.
            ('fsync', 'off'),
            ('synchronous_commit', 'off'),
            ('full_page_writes', 'off'),
        ]
        settings += sorted(self.settings.items())
        text = ['', '# pgops.backup scratch instance %s for a restore drill: empty cluster; archiving is off.'
                % self.name]
        text += ['%s = %s' % kv for kv in settings]
        conf = os.path.join(self.data_directory, 'postgresql.conf')
        self.runner.run(['tee', '-a', conf], data='\n'.join(text) + '\n', what='writing %s' % conf)
        self._write(os.path.join(self.data_directory, 'pg_hba.conf'), HBA)
        return dict(settings)


class _MaintenanceClient(Client):
    """The client of a scratch cluster: maintenance statements go to template1, so that the
    database `postgres` can be dropped and restored from the dump like any other."""

    def rows(self, sql, dbname=MAINTENANCE_DB):
        return super(_MaintenanceClient, self).rows(sql, dbname)


def relocate_tablespaces(text, tablespace_root):
    """Globals SQL with every CREATE TABLESPACE pointed below tablespace_root (one directory per
    tablespace, numbered in order). Returns (sql, [(name, original location, new location)])."""
    out, moved = [], []
    for line in text.splitlines(True):
        match = _TABLESPACE_RE.match(line.rstrip('\n'))
        if match:
            name = match.group(2)
            location = os.path.join(tablespace_root, 'ts%d' % (len(moved) + 1))
            moved.append((name.strip('"').replace('""', '"'), match.group(3).replace("''", "'"), location))
            line = "%s'%s'%s\n" % (match.group(1), location.replace("'", "''"), match.group(4))
        out.append(line)
    return ''.join(out), moved


class DrillRestoreJob(RestoreJob):
    """RestoreJob into a scratch cluster (see the module docstring). The scratch cluster is the
    drill's own, made empty for this restore: nothing in it to protect, and the drill already holds
    the production cluster's lock."""

    PROTECT = False

    def __init__(self, runner, source, target_database, tablespace_root=None, **kwargs):
        kwargs.setdefault('cluster_lock', False)
        super(DrillRestoreJob, self).__init__(runner, source, target_database, **kwargs)
        self.client = _MaintenanceClient(runner, self.connection, kwargs.get('bin_dir'))
        self.tablespace_root = tablespace_root
        self.relocated = []

    def restore_globals(self, path):
        with open(path, 'rb') as handle:
            text = handle.read().decode('utf-8', 'surrogateescape')
        moved = []
        if self.tablespace_root:
            text, moved = relocate_tablespaces(text, self.tablespace_root)
            for _name, _old, new in moved:
                self.runner.run(['mkdir', '-p', '-m', '0700', new], what='mkdir')
        parent = self.work_dir or os.path.dirname(path)
        fd, copy = tempfile.mkstemp(prefix='.drill-globals-', suffix='.sql', dir=parent)
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(text.encode('utf-8', 'surrogateescape'))
            os.chmod(copy, 0o600)
            self.owner(copy)
            result = self.client.run(psql_file_argv(self.client.binary('psql'), self.connection, MAINTENANCE_DB, copy,
                                                    stop_on_error=False), check=False)
            check_result(result, 'restoring globals', ignore=lambda line: 'already exists' in line)
        finally:
            os.unlink(copy)
        self.relocated = moved
        return moved
