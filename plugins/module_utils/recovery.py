# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point-in-time recovery on this host: preflight, restore in place or elsewhere, standby rebuild,
verification and the audit trail.

Order of work, and what it guarantees:
1. Preflight reads only (pgBackRest info, archive-get into a temporary directory, pg_waldump,
   repo-ls, psql/pg_controldata, df). A target outside the recoverable window, a missing WAL
   segment, a version or system-identifier mismatch, too little space: refused here, with the
   window in the message, before anything is stopped or moved.
2. When the newest commits are still in the running cluster's current WAL segment, `pgbackrest
   check` switches WAL and waits until it is archived, and preflight runs again.
3. In place: the cluster is stopped (only when told to), its data directory is moved aside with a
   timestamped name (never deleted) unless delta was asked for, pgBackRest restores the chosen set
   with `--set`, and PostgreSQL starts with recovery_target_action=pause.
4. Paused at the target, the server log ("recovery stopping before commit of transaction ...")
   and SQL (pg_last_xact_replay_timestamp, pg_last_wal_replay_lsn) are compared with the target;
   only a verified recovery is promoted (pg_promote). Anything else stays paused, unpromoted.
5. Every real run leaves a JSON audit record and a journal line, whatever its outcome. An in-place
   run writes its record at the first change (`...-running.json`: where the data directory went)
   and updates it at each step, so a run killed in the middle is found and reported by the next.

Guards (each refusal before anything is stopped or moved): an in-place PITR of a standby, or of a
cluster that is not the primary of the stanza, needs allow_standby (and then archiving is switched
off for the recovered instance); a standby rebuild over a stopped former primary needs
force_rebuild; a data directory that is a mount point, or whose pg_wal is a symbolic link, is never
moved aside; in-place runs hold the cluster's lock (cluster_lock.ClusterLock).
"""

import errno
import fcntl
import json
import os
import pwd
import re
import socket
import time

from . import clock as wall_clock
from .cluster_lock import DEFAULT_LOCK_DIR, ClusterBusy, ClusterLock, describe as describe_holder, lock_path, read_holder
from .metrics import stanza_of_archive_command
from .pgbackrest import error_from_result, summarize_stanza
from .pgserver import (DEFAULT_WAL_SEGMENT_SIZE, GOAL_PAUSED, GOAL_PROMOTED, GOAL_STANDBY, GOAL_STOPPED,
                       ServerProbe, controldata, directory_entries, format_lsn, free_bytes, iso, parse_lsn,
                       parse_server_log, path_exists, pg_binary, wait_for_recovery)
from .pitr import (ACTION_APPLIES, SECOND, Segments, backup_timeline, choose_backup, describe_window,
                   timeline_path, usable_backups, verify_recovery, window)
from .postgres import Psql, find_cluster, list_clusters
from .process import EngineError
from .records import DEFAULT_RECORD_DIR, PITR_AUDIT_SUBDIR, JobRecord, write_json_atomic
from .restore_point import DEFAULT_REGISTRY_DIR, load as load_restore_point
from .scratch import DEFAULT_BASE_DIR, ScratchInstance, parse_reserve
from .wal import WalArchive

DESTINATIONS = ('in_place', 'elsewhere')
SCRATCH_STATES = ('running', 'stopped', 'removed')
MIB = 1024 * 1024
AUDIT_SUBDIR = PITR_AUDIT_SUBDIR
RECOVERY_TARGET_SETTINGS = ('recovery_target', 'recovery_target_time', 'recovery_target_xid', 'recovery_target_name',
                            'recovery_target_lsn', 'recovery_target_inclusive', 'recovery_target_action',
                            'recovery_target_timeline')
# A password in a conninfo, in any spelling libpq accepts: keyword (password=, sslpassword=), URI
# user info (postgresql://user:secret@host) or URI parameter (?password=..., &sslpassword=...).
_PASSWORD_KEYWORD_RE = re.compile(r'(^|[\s?&])(ssl)?password\s*=', re.IGNORECASE)
# libpq takes everything up to the first '@' or '/' after the scheme as user info: '?' and '#' included.
_URI_USERINFO_RE = re.compile(r'^\s*postgres(ql)?://[^@/]*:[^@/]*@', re.IGNORECASE)
_INTEGER_RE = re.compile(r'^\s*-?[0-9]+\s*$')
# pg_controldata states of a cluster that was last a standby (or in archive recovery).
RECOVERY_STATES = ('shut down in recovery', 'in archive recovery')


def conninfo_has_password(conninfo):
    """True when a libpq conninfo (keyword or URI form) carries a password or sslpassword."""
    text = conninfo or ''
    try:
        from urllib.parse import unquote
        decoded = unquote(text)
    except ImportError:  # pragma: no cover - Python 2
        decoded = text
    return any(r.search(t) for r in (_PASSWORD_KEYWORD_RE, _URI_USERINFO_RE) for t in (text, decoded))


def _integer(name, value, minimum=1):
    """An option that must be a whole number >= minimum, with an error naming it (never a traceback)."""
    if isinstance(value, bool) or not _INTEGER_RE.match(str(value)) or int(value) < minimum:
        raise EngineError('%s must be a whole number from %d up (ASCII digits), not %r' % (name, minimum, value),
                          hint='e.g. %s=%d' % (name, max(minimum, 1)))
    return int(value)


class Request(object):
    """What the operator asked for, validated before anything is read from the host."""

    def __init__(self, target, destination='in_place', backup_set=None, repo=None, stop_cluster=False,
                 delta=False, switch_wal=True, wal_scan_segments=256, timeout=3600, primary_conninfo=None,
                 scratch_name='pitr', scratch_port=None, scratch_base_dir=DEFAULT_BASE_DIR,
                 scratch_state='stopped', requested_by=None, reason=None, allow_standby=False, force_rebuild=False,
                 scratch_reserve=None):
        if destination not in DESTINATIONS:
            raise EngineError('destination must be one of %s, not %r' % (', '.join(DESTINATIONS), destination))
        if target.kind == 'standby' and destination != 'in_place':
            raise EngineError('a standby is rebuilt in place (destination=in_place)')
        if delta and destination != 'in_place':
            raise EngineError('delta applies to in-place restores only; a scratch instance is always restored fresh')
        if primary_conninfo and target.kind != 'standby':
            raise EngineError('primary_conninfo is for standby rebuilds (target type standby)')
        if primary_conninfo and conninfo_has_password(primary_conninfo):
            # The value itself is never repeated: it holds the secret.
            raise EngineError('primary_conninfo contains a password (password=, sslpassword= or user:password@ in a '
                              'URI): refused, because it would reach the restore command line, the plan, the audit '
                              'record and postgresql.auto.conf',
                              hint='leave the password out of the conninfo and put it in ~postgres/.pgpass on this '
                                   'host (owner postgres, mode 0600; a line host:port:replication:user:password), or '
                                   'in another 0600 file owned by postgres named with passfile=/path in the conninfo')
        if scratch_state not in SCRATCH_STATES:
            raise EngineError('scratch_state must be one of %s' % ', '.join(SCRATCH_STATES))
        wal_scan_segments = _integer('wal_scan_segments', wal_scan_segments)
        timeout = _integer('timeout', timeout)
        if repo not in (None, ''):
            repo = _integer('repo', repo)
        if scratch_port not in (None, ''):
            scratch_port = _integer('scratch_port', scratch_port)
        if allow_standby and destination != 'in_place':
            raise EngineError('allow_standby applies to in-place recoveries only; a restore elsewhere never touches '
                              'the cluster')
        if force_rebuild and target.kind != 'standby':
            raise EngineError('force_rebuild applies to standby rebuilds (target type standby) only')
        self.target = target
        self.destination = destination
        self.backup_set = backup_set or None
        self.repo = repo or None
        self.stop_cluster = bool(stop_cluster)
        self.delta = bool(delta)
        self.switch_wal = bool(switch_wal)
        self.wal_scan_segments = int(wal_scan_segments)
        self.timeout = int(timeout)
        self.primary_conninfo = primary_conninfo or None
        self.scratch_name = scratch_name
        self.scratch_port = scratch_port or None
        self.scratch_base_dir = scratch_base_dir
        self.scratch_state = scratch_state
        # A scratch restore keeps this free on production's data and pg_wal file systems (scratch.check_space).
        self.scratch_reserve = parse_reserve(scratch_reserve)
        self.requested_by = requested_by
        self.reason = reason
        self.allow_standby = bool(allow_standby)
        self.force_rebuild = bool(force_rebuild)

    @property
    def job(self):
        return 'standby rebuild' if self.target.kind == 'standby' else 'in-place PITR'


class Refused(EngineError):
    """Preflight said no: nothing on the host was changed."""


class Pitr(object):
    """Recovery of one stanza on this host (see the module docstring for the order of work)."""

    def __init__(self, pgbr, pg_version=None, pg_cluster='main', record_dir=DEFAULT_RECORD_DIR,
                 registry_dir=DEFAULT_REGISTRY_DIR, clock=None, sleep=time.sleep, progress=None,
                 hostname=None, environ=None, lock_dir=DEFAULT_LOCK_DIR):
        self.pgbr = pgbr
        self.runner = pgbr.runner
        self.root = self.runner.as_user(None)
        self.pg_version = str(pg_version) if pg_version else None
        self.pg_cluster = pg_cluster
        self.record_dir = record_dir
        self.registry_dir = registry_dir
        self.clock = clock or wall_clock.now
        self.sleep = sleep
        self.progress = progress
        self.hostname = hostname or socket.getfqdn()
        self.environ = os.environ if environ is None else environ
        self.lock_dir = lock_dir
        self._lock = None
        self._running_record = None

    def _say(self, text):
        if self.progress:
            self.progress(text)

    # --- preflight -------------------------------------------------------------------------------

    def preflight(self, req, allow_switch=True):
        """Read-only checks and the plan. Raises Refused when the request cannot be honoured."""
        started = self.clock()
        try:
            return self._preflight(req, allow_switch, started)
        except Refused:
            raise
        except EngineError as exc:
            raise Refused(exc.msg, argv=exc.argv, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr,
                          hint=exc.hint, code=exc.code)

    def _preflight(self, req, allow_switch, started):
        target = req.target
        checks = []
        warnings = []

        def check(name, detail):
            checks.append({'name': name, 'ok': True, 'detail': detail})

        pgbr_version = self.pgbr.version_string()
        stanza = self._stanza()
        if not stanza['exists']:
            raise EngineError('stanza %s does not exist in the repository (%s)' % (self.pgbr.stanza, stanza['status_message']))
        if not stanza['backups']:
            raise EngineError('stanza %s has no backup to restore' % self.pgbr.stanza,
                              hint='take a full backup first (pgops.backup.pgbackrest_backup type=full)')
        db = max(stanza['databases'], key=lambda d: d['id'] or 0)
        self._system_id = str(db['system_id'])
        version = str(db['version'])
        in_place = req.destination == 'in_place'
        cluster = self._cluster(required=in_place)
        if in_place and cluster['version'] != version:
            raise EngineError('version mismatch: the cluster %s/%s runs PostgreSQL %s, the stanza holds backups of '
                              'PostgreSQL %s' % (cluster['version'], cluster['name'], cluster['version'], version),
                              hint='restore into a cluster of PostgreSQL %s, or restore elsewhere' % version)
        for program in ('postgres', 'pg_ctl', 'pg_controldata', 'pg_waldump'):
            pg_binary(self.runner, version, program)
        newer = [b['label'] for b in stanza['backups'] if b.get('backrest_version')
                 and _version_tuple(b['backrest_version']) > self.pgbr.version()]
        if newer:
            raise EngineError('backups %s were taken by a newer pgBackRest than the installed %s'
                              % (', '.join(newer), pgbr_version), hint='upgrade pgBackRest on this host')
        check('versions', 'stanza database PostgreSQL %s (system %s), server binaries of PostgreSQL %s installed, '
                          'pgBackRest %s' % (version, db['system_id'], version, pgbr_version))

        source = self._source_state(cluster, version)
        if cluster is not None:
            check('cluster', '%s/%s on port %d is %s%s; data directory %s' % (
                cluster['version'], cluster['name'], cluster['port'],
                'running' if source['running'] else 'stopped',
                (' (standby)' if source['in_recovery'] else ' (primary)') if source['running'] else '',
                cluster['data_directory']))
        if in_place and target.kind != 'standby' and source['system_identifier'] \
                and str(source['system_identifier']) != str(db['system_id']):
            raise EngineError('the cluster %s/%s (system identifier %s) is not the cluster stanza %s backs up '
                              '(system identifier %s)' % (cluster['version'], cluster['name'],
                                                          source['system_identifier'], self.pgbr.stanza, db['system_id']),
                              hint='check pgops_target and the stanza; restore elsewhere to inspect this backup')
        if in_place and target.kind == 'standby' and source['running'] and not source['in_recovery']:
            raise EngineError('refusing to rebuild %s/%s as a standby: it is running as a primary'
                              % (cluster['version'], cluster['name']),
                              hint='this must be the standby host; stop the cluster yourself only if it really is '
                                   'a former primary to be re-joined')
        interrupted = self._interrupted_runs(cluster, warnings) if in_place else []
        stanza_effect = None
        if in_place and target.kind != 'standby':
            kind, why = self._not_the_primary(cluster, source)
            if kind and interrupted and kind != 'archive':
                warnings.append('%s: left so by the unfinished run above, not a standby of its own' % why)
                kind = None
            if kind and not req.allow_standby:
                raise EngineError(
                    'refusing an in-place point-in-time recovery of %s/%s: %s. Recovering it would promote a new '
                    'timeline with the system identifier of stanza %s while its primary keeps running: two '
                    'writable primaries, and a forked timeline archived into the primary\'s stanza corrupts its '
                    'history' % (cluster['version'], cluster['name'], why, self.pgbr.stanza),
                    code='not-primary',
                    hint='run the recovery on the primary of stanza %s; to inspect the past without touching this '
                         'cluster restore elsewhere (destination=elsewhere, pitr_destination=elsewhere, --elsewhere); '
                         'only if this cluster must become a separate primary, set allow_standby=true '
                         '(pitr_allow_standby=true, --allow-standby): its archiving is then switched off'
                         % self.pgbr.stanza)
            if kind:
                stanza_effect = ('%s/%s is not the primary of stanza %s (%s). With allow_standby it is restored with '
                                 'archive_mode=off (pgbackrest restore --archive-mode=off): the recovered instance '
                                 'is a separate primary on a forked timeline and never archives into stanza %s, '
                                 'whose primary keeps its own timeline; nothing protects it until it gets a stanza '
                                 'of its own, and no new backup is taken into stanza %s'
                                 % (cluster['version'], cluster['name'], self.pgbr.stanza, why, self.pgbr.stanza,
                                    self.pgbr.stanza))
                warnings.append(stanza_effect)
        if in_place and target.kind == 'standby' and not source['running'] and source['data_exists'] \
                and source['control_state'] and source['control_state'] not in RECOVERY_STATES \
                and not source['standby_signal']:
            why = ('the stopped cluster %s/%s was last a primary: pg_control says "Database cluster state: %s" (not '
                   '"shut down in recovery") and there is no standby.signal'
                   % (cluster['version'], cluster['name'], source['control_state']))
            if interrupted:
                warnings.append('%s; it is left so by the unfinished run above, so it is rebuilt' % why)
            elif not req.force_rebuild:
                raise EngineError('refusing to rebuild %s as a standby: %s. WAL it wrote and did not archive (in '
                                  '%s/pg_wal) would be overwritten, and those transactions lost'
                                  % (cluster['data_directory'], why, cluster['data_directory']),
                                  code='former-primary',
                                  hint='if this is the right cluster (a former primary to re-join), first make sure '
                                       'its WAL is archived (no .ready files in pg_wal/archive_status, or copy '
                                       'pg_wal away), then run again with force_rebuild=true (standby_force=true, '
                                       '--force-rebuild); check pgops_target and pg_cluster otherwise')
            else:
                warnings.append('%s; force_rebuild: its unarchived WAL, if any, is overwritten' % why)
        if source['archiver_failing']:
            warnings.append('archiving is failing on the running cluster (last failed WAL %s): WAL after %s is not '
                            'in the repository' % (source['archiver_last_failed'], source['archiver_last_archived']))
        segments = Segments(source['segment_size'] or DEFAULT_WAL_SEGMENT_SIZE)

        archives = [a for a in stanza['archive'] if a.get('db_id') in (None, db['id']) and a.get('max')
                    and (not req.repo or a.get('repo_key') == req.repo)]
        if not archives:
            raise EngineError('the WAL archive of stanza %s is empty' % self.pgbr.stanza,
                              hint='check archive_command and run pgbackrest check')
        newest_name = max(a['max'] for a in archives)
        archive_id = [a for a in archives if a['max'] == newest_name][0]['id']
        newest_tli, newest_segno = segments.parse(newest_name)
        now_us = int(self.clock() * SECOND)

        wal_pg_path = self._control_source(cluster, interrupted, check)
        with WalArchive(self.pgbr, version, segments.size, archive_id=archive_id, repo=req.repo,
                        pg_path=wal_pg_path) as wal:
            if target.timeline in (None, 'latest'):
                target_tli = wal.newest_timeline(newest_tli)
            elif target.timeline == 'current':
                target_tli = None
            else:
                target_tli = int(target.timeline)
            path = timeline_path(target_tli, wal.history(target_tli)) if target_tli else None
            unarchived_timeline = None
            if path and newest_tli != target_tli:
                # The archive ends, for this history, with the newest segment of its timelines.
                floor = segments.parse(stanza['archive_min'])[1] if stanza.get('archive_min') else 0
                best = None
                for tli in sorted(path, reverse=True):
                    upto = newest_segno if path[tli] is None else min(newest_segno, segments.of_lsn(path[tli]))
                    segno = wal.newest_on(tli, upto, floor)
                    if segno is not None:
                        best = (tli, segno)
                        break
                if best is None:
                    raise EngineError('no WAL of timeline %d or its history is archived' % target_tli,
                                      hint='choose the timeline explicitly (timeline=%d)' % newest_tli)
                if best[0] != target_tli:
                    unarchived_timeline = ('nothing of timeline %d is archived yet (the newest archived segment of '
                                           'its history, %s, is on timeline %d): PostgreSQL would read timeline %d '
                                           'past its switch point' % (target_tli, segments.name(best[0], best[1]),
                                                                      best[0], best[0]))
                newest_tli, newest_segno = best
                newest_name = segments.name(newest_tli, newest_segno)
            backups = usable_backups(stanza, db['id'], path, segments, req.repo)
            if not backups:
                raise EngineError('no usable backup for timeline %s: every backup is of another database or '
                                  'timeline, or its WAL has expired' % (target_tli or 'current'),
                                  hint='take a full backup (pgops.backup.pgbackrest_backup type=full)')
            floor_segno = segments.parse(backups[0]['wal_start'])[1]
            scan_path = path or {backup_timeline(backups[-1]): None}

            position = self._locate(target, wal, scan_path, newest_segno, floor_segno, req)
            newest_commit_us = position.pop('newest_commit_us', None)
            if target.kind == 'latest':
                position['end_lsn'] = format_lsn(segments.start_lsn(newest_segno))
            win = window(backups, newest_name, newest_commit_us, segments.start_lsn(newest_segno + 1))
            beyond = self._beyond(target, position, wal, newest_name, newest_segno, newest_commit_us, source,
                                  segments, now_us, win)
            beyond = beyond or unarchived_timeline
            switch = None
            if beyond:
                if allow_switch and req.switch_wal and source['running'] and not source['in_recovery']:
                    switch = beyond
                else:
                    hint = self._beyond_hint(target, source)
                    if unarchived_timeline:
                        hint = ('run `pgbackrest check` on the primary of timeline %d so its WAL is archived, or '
                                'recover along the old timeline (timeline=%d)' % (target_tli, newest_tli))
                    raise EngineError('%s; %s' % (beyond, describe_window(win)), code='after-window', hint=hint)
            if switch and position.get('lsn') is None and position.get('time_us') is None:
                backup, reason = None, 'chosen after the WAL switch'
            else:
                try:
                    backup, reason = choose_backup(backups, target, position, req.backup_set)
                except EngineError as exc:
                    raise EngineError('%s; %s' % (exc.msg, describe_window(win)), code=exc.code, hint=exc.hint or
                                      'choose a target inside the window')
            if backup is not None and path is None:
                scan_path = {backup_timeline(backup): None}
            if backup is not None and target.kind == 'name' and position.get('source') == 'wal-scan':
                self._check_duplicate_names(target, position, wal, scan_path, backup, segments, req)
            check('window', describe_window(win))
            if backup is not None:
                check('backup_set', '%s (%s, %s; %s)' % (backup['label'], backup['type'], describe_backup(backup), reason))
                first = backup['wal_start']
                if wal.fetch(first) is None:
                    raise EngineError('the first WAL segment of backup %s (%s) is not in the archive'
                                      % (backup['label'], first))
                wal.drop(first)
                end_segno = newest_segno
                if position.get('lsn') is not None:
                    end_segno = min(newest_segno, segments.of_lsn(position['lsn']))
                end_name = None
                if not switch:
                    end_name = wal.prove_fetchable(end_segno, scan_path)
                    if end_name is None:
                        raise EngineError('WAL segment %s, which holds the target, is not in the archive'
                                          % segments.name(target_tli or newest_tli, end_segno))
                    wal.drop(end_name)
                end_name = end_name or segments.name(newest_tli, end_segno)
                check('wal_fetch', 'archive-get of %s%s into a temporary directory works'
                      % (first, '' if switch or end_name == first else ' and %s' % end_name))
                missing = wal.missing(segments.parse(first)[1], end_segno, scan_path)
                if missing:
                    raise EngineError('WAL gap: %s missing from the archive between %s and %s; recovery would stop '
                                      'there' % (', '.join(missing), first, end_name),
                                      hint='choose a target before the gap or a backup after it')
                check('wal_continuity', 'every segment from %s to %s is archived' % (first, end_name))

        data = self._data_plan(req, cluster, source, backup, segments)
        check('free_space', data['space'])
        if data.get('warning'):
            warnings.append(data['warning'])
        internal_action = target.action
        if target.kind in ACTION_APPLIES and target.action == 'promote' and source['hot_standby']:
            internal_action = 'pause'
        restore_argv = self._restore_argv(req, cluster, backup, internal_action, data,
                                          archive_off=bool(stanza_effect)) if backup else None
        plan = {
            'stanza': self.pgbr.stanza, 'host': self.hostname, 'target': target.as_dict(),
            'destination': req.destination, 'position': _public_position(position),
            'backup_set': _public_backup(backup, reason) if backup else None,
            'window': win, 'timeline': target_tli, 'pg_version': version,
            'cluster': _public_cluster(cluster, source),
            'stop_required': bool(in_place and source['running']),
            'wal_switch': {'needed': bool(switch), 'reason': switch},
            'data_directory': data, 'restore_command': restore_argv,
            'recovery_target_action': internal_action, 'checks': checks, 'warnings': warnings,
            'seconds': round(self.clock() - started, 3),
            'interrupted_runs': interrupted, 'stanza_effect': stanza_effect,
            'archiving_disabled': bool(stanza_effect),
        }
        plan['steps'] = self._steps(req, plan)
        return plan

    def _stanza(self):
        """The stanza summary, with what recovery needs beyond it: each backup's database id and
        pgBackRest version, each archive's database id."""
        result = self.pgbr.run('info', '--output=json')
        try:
            entries = json.loads(result.stdout or '[]')
        except ValueError:
            raise EngineError('pgbackrest info did not return JSON', stdout=result.stdout)
        found = [e for e in entries if e.get('name') == self.pgbr.stanza]
        if not found:
            raise EngineError('stanza %r is not defined in the pgBackRest configuration' % self.pgbr.stanza)
        stanza = summarize_stanza(found[0])
        raw = dict((b.get('label'), b) for b in found[0].get('backup') or [])
        for backup in stanza['backups']:
            entry = raw.get(backup['label']) or {}
            backup['db_id'] = (entry.get('database') or {}).get('id')
            backup['backrest_version'] = (entry.get('backrest') or {}).get('version')
        for archive in stanza['archive']:
            archive['db_id'] = _archive_db_id(archive.get('id'))
        return stanza

    def _cluster(self, required):
        try:
            return find_cluster(list_clusters(self.runner), self.pg_version, self.pg_cluster)
        except EngineError:
            if required:
                raise
            return None

    def _source_state(self, cluster, version):
        state = {'running': False, 'in_recovery': None, 'system_identifier': None, 'segment_size': None,
                 'hot_standby': True, 'current_lsn': None, 'archiver_failing': False,
                 'archiver_last_failed': None, 'archiver_last_archived': None, 'data_exists': False,
                 'control_state': None, 'standby_signal': False, 'recovery_signal': False}
        if cluster is None:
            return state
        state['running'] = cluster['status'].startswith('online')
        state['data_exists'] = path_exists(self.runner, cluster['data_directory'], '-d')
        if state['data_exists']:
            state['standby_signal'] = path_exists(self.runner, os.path.join(cluster['data_directory'],
                                                                            'standby.signal'))
            state['recovery_signal'] = path_exists(self.runner, os.path.join(cluster['data_directory'],
                                                                             'recovery.signal'))
        if state['running']:
            row = Psql(self.runner, port=cluster['port']).rows(
                "SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())::text,"
                " (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'),"
                " current_setting('hot_standby'),"
                " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,"
                " last_archived_wal, last_failed_wal,"
                " coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)"
                " FROM pg_stat_archiver")[0]
            state.update(in_recovery=row[0] == 't', system_identifier=row[1], segment_size=int(row[2]),
                         hot_standby=row[3] == 'on', current_lsn=row[4] or None,
                         archiver_last_archived=row[5] or None, archiver_last_failed=row[6] or None,
                         archiver_failing=row[7] == 't')
        elif state['data_exists'] and path_exists(self.runner, os.path.join(cluster['data_directory'], 'global',
                                                                            'pg_control')):
            control = controldata(self.runner, version, cluster['data_directory'])
            state.update(system_identifier=control['system_identifier'], segment_size=control['wal_segment_size'],
                         control_state=control['state'])
        return state

    def _control_source(self, cluster, interrupted, check):
        """pgBackRest's archive-get reads pg_control of pg1-path. A data directory without one (what a killed
        run left) gets the pg_control of the data directory that run moved aside; None: the default."""
        if cluster is None or path_exists(self.runner, os.path.join(cluster['data_directory'], 'global', 'pg_control')):
            return None
        for run in interrupted:
            aside = run.get('moved_aside_to')
            if aside and path_exists(self.runner, os.path.join(aside, 'global', 'pg_control')):
                check('pg_control', '%s has no pg_control (unfinished restore): WAL is fetched with the pg_control '
                                    'of %s' % (cluster['data_directory'], aside))
                return aside
        return None

    def _not_the_primary(self, cluster, source):
        """(kind, why) when the cluster is a standby or not the primary of this stanza; (None, None) otherwise."""
        # recovery.signal without standby.signal: a targeted recovery (an earlier PITR left paused, shut down at
        # its target, or not verified), never a standby. Re-running with another target must work; its archiving
        # settings (restored from the stanza's backup) still say whose primary it is.
        targeted = source['recovery_signal'] and not source['standby_signal']
        if source['running'] and source['in_recovery'] and not targeted:
            return 'standby', 'it is running as a standby (pg_is_in_recovery() is true)'
        if source['standby_signal']:
            return 'standby', 'it is a standby (standby.signal in %s)' % cluster['data_directory']
        if not source['running'] and source['control_state'] in RECOVERY_STATES and not targeted:
            return 'standby', 'it was last a standby (pg_control: "Database cluster state: %s")' % source['control_state']
        if source['running']:
            row = Psql(self.runner, port=cluster['port']).rows(
                "SELECT current_setting('archive_mode'), current_setting('archive_command')")[0]
            mode, stanza = row[0], stanza_of_archive_command(row[1])
            what = 'it is in a targeted recovery (recovery.signal)' if source['in_recovery'] else 'it is a primary'
            if mode == 'off':
                return 'archive', '%s with archive_mode=off, so it is not the primary of stanza %s' \
                    % (what, self.pgbr.stanza)
            if stanza != self.pgbr.stanza:
                return 'archive', ('%s, but its archive_command archives into %s, not into stanza %s'
                                   % (what, 'stanza %s' % stanza if stanza else 'no pgBackRest stanza',
                                      self.pgbr.stanza))
        return None, None

    def _locate(self, target, wal, path, newest_segno, floor_segno, req):
        """Where the target is: {'lsn', 'end_lsn', 'time_us', 'source', ...}."""
        limit = req.wal_scan_segments
        if target.kind == 'time':
            found = wal.scan(newest_segno, floor_segno, path, min(limit, 64), rmgr='Transaction')
            commit = found['newest_commit']
            return {'time_us': target.time_us, 'lsn': None, 'source': 'target',
                    'newest_commit_us': commit[0] if commit else None}
        if target.kind == 'lsn':
            return {'lsn': target.lsn, 'time_us': None, 'source': 'target'}
        if target.kind == 'name':
            entry = load_restore_point(self.registry_dir, target.name) if self.registry_dir else None
            if entry and str(entry.get('system_identifier')) == self._system_id and entry.get('lsn'):
                return {'lsn': parse_lsn(entry['lsn']), 'end_lsn': entry['lsn'], 'time_us': entry.get('created_us'),
                        'source': 'registry', 'segment': entry.get('wal_file'), 'timeline': entry.get('timeline')}
            found = wal.scan(newest_segno, floor_segno, path, limit, rmgr='XLOG',
                             want=lambda r: r['kind'] == 'restore_point' and r['name'] == target.name)
            return self._found(found, 'restore point %s' % target.name)
        if target.kind == 'xid':
            found = wal.scan(newest_segno, floor_segno, path, limit, rmgr='Transaction', xid=target.xid,
                             want=lambda r: r['kind'] in ('commit', 'abort') and r['xid'] == target.xid)
            position = self._found(found, 'transaction %d' % target.xid)
            if position.get('record_kind') == 'abort':
                raise EngineError('transaction %d was rolled back (abort record at %s): there is nothing to recover '
                                  'to' % (target.xid, position['lsn_text']))
            return position
        return {'lsn': None, 'time_us': None, 'source': 'none'}

    @staticmethod
    def _found(found, what):
        if not found['matches']:
            return {'lsn': None, 'time_us': None, 'source': 'wal-scan', 'found': False, 'what': what,
                    'scanned': found['scanned'], 'reached_floor': found['reached_floor']}
        matches = sorted(found['matches'], key=lambda m: parse_lsn(m[0]['lsn']))
        record, segment = matches[-1]
        return {'lsn': parse_lsn(record['lsn']), 'lsn_text': record['lsn'], 'end_lsn': record['end_lsn'],
                'time_us': record['time_us'], 'source': 'wal-scan', 'found': True, 'segment': segment,
                'record_kind': record['kind'], 'scanned': found['scanned'], 'what': what,
                'matches': [(m[0]['lsn'], m[1]) for m in matches]}

    def _beyond(self, target, position, wal, newest_name, newest_segno, newest_commit_us, source, segments,
                now_us, win):
        """Why the target is not (yet) inside the archived WAL, or None. Raises when it never can be."""
        if target.kind == 'time':
            if target.time_us > now_us + SECOND:
                raise EngineError('the target %s is in the future (now %s); %s'
                                  % (iso(target.time_us), iso(now_us), describe_window(win)), code='after-window')
            reached = newest_commit_us is not None and (
                newest_commit_us > target.time_us if target.inclusive else newest_commit_us >= target.time_us)
            if not reached:
                return ('no transaction committed after the target %s is archived yet (newest archived transaction: '
                        '%s), so recovery could not prove it reached the target'
                        % (iso(target.time_us), iso(newest_commit_us) if newest_commit_us else 'none found'))
            return None
        if target.kind == 'lsn':
            if source['current_lsn'] and target.lsn > parse_lsn(source['current_lsn']):
                raise EngineError('the target LSN %s is beyond the running cluster\'s current WAL position %s; %s'
                                  % (target.value, source['current_lsn'], describe_window(win)), code='after-window')
            end = segments.start_lsn(newest_segno + 1)
            if target.lsn >= end:
                return 'the target LSN %s is after the end of the archived WAL (%s)' % (target.value, format_lsn(end))
            if segments.of_lsn(target.lsn) == newest_segno:
                records = wal.waldump(newest_name, start=target.value, limit=1)
                if not records:
                    return 'no WAL record at or after the target LSN %s is archived yet' % target.value
            return None
        if target.kind in ('xid', 'name') and not position.get('found', True):
            if source['running'] and not source['in_recovery']:
                if target.kind == 'xid':
                    status = self._xid_status(source, target.xid)
                    if status == 'committed':
                        return 'transaction %d committed but is not archived yet' % target.xid
                    if status in ('aborted', 'in progress'):
                        raise EngineError('transaction %d is %s on the running cluster: there is no commit to '
                                          'recover to' % (target.xid, status))
                    if status == 'future':
                        raise EngineError('transaction %d has not started yet on the running cluster' % target.xid,
                                          code='after-window')
                else:
                    return 'restore point %s is not in the archived WAL (it may still be in the current segment)' \
                           % target.name
            where = ('since the oldest usable backup' if position.get('reached_floor')
                     else 'in the newest %d archived segments' % position.get('scanned', 0))
            raise EngineError('%s was not found in the archived WAL %s: it is older than the oldest usable backup, '
                              'or does not exist' % (position['what'], where),
                              code='before-window' if position.get('reached_floor') else 'not-found',
                              hint='check the %s; give backup_set explicitly or raise wal_scan_segments'
                                   % ('transaction id' if target.kind == 'xid' else 'name'))
        return None

    def _xid_status(self, source, xid):
        cluster = self._cluster(required=False)
        sql = ("SELECT txid_status(CASE WHEN %d <= (x & 4294967295) THEN ((x >> 32) << 32) + %d"
               " ELSE (((x >> 32) - 1) << 32) + %d END)"
               " FROM (SELECT txid_snapshot_xmax(txid_current_snapshot()) AS x) s" % (xid, xid, xid))
        try:
            return Psql(self.runner, port=cluster['port']).value(sql) or 'unknown'
        except EngineError as exc:
            if 'in the future' in (exc.stderr or '') + (exc.stdout or ''):
                return 'future'
            return 'unknown'

    @staticmethod
    def _beyond_hint(target, source):
        if source['running']:
            return ('wait until the newest WAL is archived (archive_timeout), or let the module switch WAL '
                    '(switch_wal=true), or use target latest')
        return 'the cluster is not running, so no newer WAL can reach the archive: use target latest'

    def _check_duplicate_names(self, target, position, wal, path, backup, segments, req):
        start_lsn = parse_lsn(backup['lsn_start'])
        older = [m for m in position.get('matches', []) if start_lsn <= parse_lsn(m[0]) < position['lsn']]
        if not older:
            top = segments.of_lsn(position['lsn']) - 1
            floor = segments.of_lsn(start_lsn)
            if top >= floor:
                found = wal.scan(top, floor, path, req.wal_scan_segments, rmgr='XLOG',
                                 want=lambda r: r['kind'] == 'restore_point' and r['name'] == target.name)
                older = [(r['lsn'], s) for r, s in found['matches'] if parse_lsn(r['lsn']) >= start_lsn]
        if older:
            raise EngineError('restore point name %s occurs more than once after backup %s (at %s and %s): '
                              'PostgreSQL would stop at the first one' % (target.name, backup['label'], older[0][0],
                                                                          position['lsn_text']),
                              hint='recover to the WAL location instead: target type lsn, value %s' % position['end_lsn'])

    def _data_plan(self, req, cluster, source, backup, segments):
        size = (backup or {}).get('size') or 0
        need = int(size * 1.1) + 3 * segments.size + 64 * MIB
        if req.destination == 'elsewhere':
            inst = self._scratch(req, source_version=None)
            if inst.exists():
                raise EngineError('scratch instance %s already exists (%s)' % (inst.name, inst.data_directory),
                                  hint='remove it first (state=absent) or choose another scratch_name')
            port = inst.choose_port()
            space = inst.check_space(need, req.scratch_reserve)
            where, free = space['path'], space['free_bytes']
            out = inst.describe()
            out.update(mode='scratch', port=port, required_bytes=need, free_bytes=free,
                       space='%s free in %s, %s needed' % (_size(free), where, _size(need)))
            return out
        data_dir = cluster['data_directory']
        # As root: a directory postgres cannot read (left by a killed run) is not an empty one.
        entries = directory_entries(self.root, data_dir)
        out = {'path': data_dir, 'aside_path': None, 'delta': req.delta}
        if req.delta:
            out['mode'] = 'delta'
            need = 3 * segments.size + 64 * MIB
            where = data_dir
        elif not entries:
            out['mode'] = 'fresh'
            where = _existing_parent(self.runner, data_dir)
        else:
            tablespaces = directory_entries(self.runner, os.path.join(data_dir, 'pg_tblspc')) or []
            if tablespaces:
                raise EngineError('the cluster has tablespaces (pg_tblspc: %s): moving the data directory aside '
                                  'would leave them where they are and the restore would refuse to overwrite them'
                                  % ', '.join(tablespaces),
                                  hint='copy the tablespace directories away and restore with delta=true, or restore '
                                       'elsewhere')
            self._check_movable(data_dir)
            out['mode'] = 'move_aside'
            stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(self.clock()))
            out['aside_path'] = '%s.pitr-%s' % (data_dir, stamp)
            if path_exists(self.runner, out['aside_path']):
                raise EngineError('%s already exists' % out['aside_path'], hint='wait a second and run again')
            where = os.path.dirname(data_dir)
        free = free_bytes(self.runner, where)
        out.update(required_bytes=need, free_bytes=free,
                   space='%s free in %s, %s needed' % (_size(free), where, _size(need)))
        if free < need:
            raise EngineError('not enough free space in %s: %s free, %s needed (backup size plus WAL)'
                              % (where, _size(free), _size(need)),
                              hint='free space, or restore with delta=true, or restore elsewhere')
        return out

    def _check_movable(self, data_dir):
        """The data directory is renamed aside after the cluster is stopped: refuse now what would fail then."""
        result = self.root.run(['mountpoint', '-q', '--', data_dir], check=False)
        if result.rc == 0:
            raise EngineError('the data directory %s is a mount point: it cannot be renamed aside (a mount point '
                              'cannot be moved within its parent file system), so an in-place restore that keeps '
                              'the old data is impossible; nothing was stopped' % data_dir, code='mount-point',
                              hint='restore elsewhere (destination=elsewhere) and copy what you need; or stop the '
                                   'cluster, mount the volume somewhere else (it is your copy of the old data), mount '
                                   'a fresh empty volume at %s owned by postgres, and run again (an empty data '
                                   'directory is restored into directly); delta=true overwrites it in place and keeps '
                                   'nothing' % data_dir)
        wal_dir = os.path.join(data_dir, 'pg_wal')
        if path_exists(self.runner, wal_dir, '-L'):
            link = self.root.run(['readlink', '--', wal_dir], check=False).stdout.strip() or '?'
            raise EngineError('pg_wal in %s is a symbolic link to %s (WAL on another file system): moving the data '
                              'directory aside moves only the link, and the restore would write the new WAL into '
                              'the directory the old cluster\'s WAL is in; nothing was stopped' % (data_dir, link),
                              code='wal-link',
                              hint='restore elsewhere (destination=elsewhere); or stop the cluster, copy %s away, and '
                                   'restore with delta=true (pgBackRest recreates the link)' % link)

    def _scratch(self, req, source_version=None):
        version = source_version or self.pg_version or self._stanza_version()
        return ScratchInstance(self.runner, self.pgbr, version, name=req.scratch_name, base_dir=req.scratch_base_dir,
                               port=req.scratch_port, clock=self.clock, sleep=self.sleep, progress=self.progress)

    def _stanza_version(self):
        return str(max(self._stanza()['databases'], key=lambda d: d['id'] or 0)['version'])

    def _restore_argv(self, req, cluster, backup, action, data, archive_off=False):
        extra = []
        if req.destination == 'elsewhere':
            inst = self._scratch(req)
            inst.port = data['port']
            return inst.restore_argv(req.target, backup['label'], req.repo, action=action)
        options = ['--pg1-path=%s' % cluster['data_directory'], '--set=%s' % backup['label']]
        if req.repo:
            options.append('--repo=%d' % req.repo)
        options += req.target.restore_options(action=action)
        if req.delta:
            options.append('--delta')
        if archive_off:
            options.append('--archive-mode=off')
        if req.primary_conninfo:
            extra.append('--recovery-option=primary_conninfo=%s' % req.primary_conninfo)
        options += extra + ['--log-level-console=info']
        return self.pgbr.argv('restore', *options)

    def _steps(self, req, plan):
        steps = []
        cluster = plan['cluster']
        data = plan['data_directory']
        if plan['wal_switch']['needed']:
            steps.append('switch WAL on the running cluster and wait until it is archived (pgbackrest check), '
                         'then run this preflight again')
        if req.destination == 'in_place':
            if plan['stop_required']:
                steps.append('stop %s%s' % (cluster['service'], '' if req.stop_cluster else
                                            ' (REFUSED unless stop_cluster=true)'))
            if data['mode'] == 'move_aside':
                steps.append('move %s to %s (kept; never deleted)' % (data['path'], data['aside_path']))
            elif data['mode'] == 'delta':
                steps.append('overwrite %s in place (--delta): the current contents are NOT kept' % data['path'])
            if plan.get('archiving_disabled'):
                steps.append('write archive_mode=off for the recovered instance (--archive-mode=off): it never '
                             'archives into stanza %s' % plan['stanza'])
        else:
            steps.append('create scratch instance %s in %s on port %s (archive_mode=off, Unix socket only)'
                         % (data['name'], data['data_directory'], data['port']))
        steps.append('restore backup set %s: %s' % ((plan['backup_set'] or {}).get('label', '(after the WAL switch)'),
                                                    ' '.join(plan['restore_command'] or [])))
        kind = req.target.kind
        if kind == 'standby':
            steps.append('start it and wait until it is a consistent standby that streams or replays WAL')
        elif kind == 'latest':
            steps.append('start it and wait until every archived WAL record is replayed and it leaves recovery')
        else:
            steps.append('start it and wait until recovery %s at the target (timeout %d s)'
                         % ('shuts down' if plan['recovery_target_action'] == 'shutdown' else 'pauses', req.timeout))
            steps.append('verify the target was reached (server log and SQL)%s'
                         % (', then promote (new timeline)' if req.target.action == 'promote' else ''))
        if req.destination == 'elsewhere' and req.scratch_state != 'running':
            steps.append('%s the scratch instance' % ('stop' if req.scratch_state == 'stopped' else 'remove'))
        return steps

    # --- execution -------------------------------------------------------------------------------

    def run(self, req, check_mode=False, plan_only=False):
        """Preflight, then (unless check_mode or plan_only) the restore. Returns the result dict;
        raises Refused/EngineError with the state of the host in the message."""
        started = self.clock()
        progress = {'phases': {}, 'moved_aside_to': None, 'stopped': False, 'restored': False, 'plan': None,
                    'stage': 'preflight', 'stale_lock': None, 'started': started}
        self._running_record = None
        try:
            if req.destination == 'in_place' and not (check_mode or plan_only):
                self._take_lock(req, progress)
            plan = self.preflight(req)
            progress['plan'] = plan
            if plan['wal_switch']['needed'] and not (check_mode or plan_only):
                progress['phases']['wal_switch'] = self._timed(self._switch_wal)
                plan = self.preflight(req, allow_switch=False)
                plan['wal_switched'] = True
                progress['plan'] = plan
            progress['phases']['preflight'] = plan['seconds']
            if check_mode:
                return {'changed': not plan_only, 'plan': plan, 'status': 'planned'}
            if plan_only:
                result = {'changed': False, 'plan': plan, 'status': 'planned'}
                result['record'] = self._audit('planned', req, progress, result, None, started)
                return result
            if req.destination == 'in_place':
                result = self._in_place(req, plan, progress)
            else:
                result = self._elsewhere(req, plan, progress)
        except EngineError as exc:
            status = 'refused' if isinstance(exc, Refused) else 'failed'
            if not check_mode:
                record = self._audit(status, req, progress, None, exc, started)
                exc.record = record
            exc.status = status
            exc.plan = progress.get('plan')
            raise
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
        result['durations'] = dict(progress['phases'], total=round(self.clock() - started, 3))
        self._carry(result, progress)
        result['record'] = self._audit('ok', req, progress, result, None, started)
        return result

    @staticmethod
    def _carry(result, progress):
        """What the caller must see besides the outcome: interrupted runs, a stale lock, archiving off."""
        plan = progress.get('plan') or {}
        warnings = list(result.get('warnings') or [])
        if progress.get('stale_lock'):
            warnings.append(progress['stale_lock_text'])
            result['stale_lock'] = progress['stale_lock']
        if plan.get('interrupted_runs'):
            result['interrupted_runs'] = plan['interrupted_runs']
            warnings += [w for w in plan.get('warnings', []) if w.startswith('an earlier ')]
        if plan.get('archiving_disabled'):
            result['archiving_disabled'] = True
            warnings.append(plan['stanza_effect'])
        if warnings:
            result['warnings'] = warnings

    # --- the cluster lock and the record of a run in progress ----------------------------------

    def _cluster_key(self):
        cluster = self._cluster(required=False)
        if cluster is not None:
            return '%s/%s' % (cluster['version'], cluster['name']), cluster
        return '%s/%s' % (self.pg_version or 'any', self.pg_cluster), None

    def _take_lock(self, req, progress):
        key, cluster = self._cluster_key()
        uid = gid = None
        try:
            entry = pwd.getpwnam((cluster or {}).get('owner') or 'postgres')
            uid, gid = entry.pw_uid, entry.pw_gid
        except KeyError:
            pass
        lock = ClusterLock(key, job='%s of stanza %s' % (req.job, self.pgbr.stanza), lock_dir=self.lock_dir,
                           owner_uid=uid, owner_gid=gid,
                           details={'stanza': self.pgbr.stanza, 'target': req.target.describe(),
                                    'host': self.hostname})
        try:
            lock.acquire()
        except ClusterBusy as exc:
            raise Refused(exc.msg, hint=exc.hint, code='locked')
        self._lock = lock
        if lock.stale:
            progress['stale_lock'] = lock.stale
            progress['stale_lock_text'] = ('a stale lock of cluster %s was found and cleared: %s did not finish '
                                           '(pid %s is gone%s); see its unfinished record, if any'
                                           % (key, describe_holder(lock.stale), lock.stale.get('pid'),
                                              '' if not lock.stale.get('alive') else ', or was reused'))
            self._say(progress['stale_lock_text'])

    def _lock_busy(self, cluster):
        """Is another process holding the cluster's lock now? (for plans, which never take it)"""
        path = lock_path('%s/%s' % (cluster['version'], cluster['name']), self.lock_dir)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (IOError, OSError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return read_holder(path) or {}
            return None
        finally:
            os.close(fd)
        return None

    def _interrupted_runs(self, cluster, warnings):
        """Records of in-place runs on this cluster that were killed before they finished."""
        if cluster is None:
            return []
        if self._lock is None:
            holder = self._lock_busy(cluster)
            if holder is not None:
                warnings.append('a recovery of this cluster is running now: %s; a run started now is refused until '
                                'it ends' % describe_holder(holder))
                return []
        if not self.record_dir:
            return []
        directory = os.path.join(self.record_dir, AUDIT_SUBDIR)
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith('-running.json'))
        except OSError:
            return []
        found = []
        for name in names:
            path = os.path.join(directory, name)
            if path == self._running_record:
                continue
            try:
                with open(path) as handle:
                    record = json.load(handle)
            except (IOError, OSError, ValueError):
                continue
            if record.get('stanza') != self.pgbr.stanza or record.get('data_directory') != cluster['data_directory']:
                continue
            found.append(dict(record, record=path))
        out = []
        for record in found:
            entry = {'record': record['record'], 'started_at': record.get('started_at'), 'pid': record.get('pid'),
                     'requested_by': record.get('requested_by'), 'stage': record.get('stage'),
                     'target': (record.get('target') or {}).get('description'),
                     'data_directory': record.get('data_directory'), 'moved_aside_to': record.get('moved_aside_to')}
            out.append(entry)
            if entry['moved_aside_to']:
                where = ('the data directory as it was before that run is at %s (moved aside, intact); %s holds '
                         'what that run left (an unfinished restore)'
                         % (entry['moved_aside_to'], entry['data_directory']))
            elif record.get('delta'):
                where = '%s was being overwritten in place (delta): its old contents are gone' % entry['data_directory']
            else:
                where = 'the data directory %s was not moved' % entry['data_directory']
            warnings.append('an earlier %s (started %s by %s, pid %s, target %s) did not finish: it was killed or '
                            'crashed at stage "%s"; %s. A new in-place run moves the current contents aside too and '
                            'restores again; nothing is deleted (record %s)'
                            % (record.get('job_kind') or 'in-place run', entry['started_at'], entry['requested_by'],
                               entry['pid'], entry['target'], entry['stage'], where, entry['record']))
        return out

    def _mark(self, req, progress, stage, **changes):
        """Write (at the first change) and update the record of this run, so a killed run leaves its trace."""
        progress['stage'] = stage
        progress.update(changes)
        if not self.record_dir:
            return
        directory = os.path.join(self.record_dir, AUDIT_SUBDIR)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o750)
        first = self._running_record is None
        if first:
            stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(progress['started']))
            self._running_record = os.path.join(directory,
                                                'pitr-restore-%s-%s-running.json' % (self.pgbr.stanza, stamp))
        fields = self._fields(req, progress, None, None, progress['started'])
        fields.update(status='running', stage=stage, pid=os.getpid(), job_kind=req.job, delta=req.delta,
                      started_at=wall_clock.utc_now_text() if first else progress.get('started_at'),
                      updated_at=wall_clock.utc_now_text())
        progress.setdefault('started_at', fields['started_at'])
        write_json_atomic(self._running_record, fields)
        if first:
            # The runs killed before this one are this run's business now: their trace moves into its record.
            for entry in (progress.get('plan') or {}).get('interrupted_runs') or []:
                self._close_interrupted(entry['record'], self._running_record)

    @staticmethod
    def _close_interrupted(path, superseded_by):
        try:
            with open(path) as handle:
                record = json.load(handle)
        except (IOError, OSError, ValueError):
            return
        record.update(status='interrupted', superseded_by=superseded_by)
        write_json_atomic(path[:-len('-running.json')] + '-interrupted.json', record)
        os.unlink(path)

    def _timed(self, func, *args):
        t0 = self.clock()
        func(*args)
        return round(self.clock() - t0, 3)

    def _switch_wal(self):
        self._say('switching WAL and waiting until it is archived (pgbackrest check)')
        self.pgbr.run('check')

    def _in_place(self, req, plan, progress):
        cluster = self._cluster(required=True)
        service = 'postgresql@%s-%s.service' % (cluster['version'], cluster['name'])
        data = plan['data_directory']
        data_dir = cluster['data_directory']
        psql = Psql(self.runner, port=cluster['port'])
        probe = ServerProbe(self.runner, cluster['version'], data_dir, psql, cluster.get('log'))
        phases = progress['phases']
        if cluster['status'].startswith('online'):
            if not req.stop_cluster:
                raise Refused('the cluster %s/%s is running: refusing to restore over it' % (cluster['version'],
                                                                                             cluster['name']),
                              hint='set stop_cluster=true to let the module stop it (after reading the plan)')
            t0 = self.clock()
            self._mark(req, progress, 'stopping the cluster')
            self._say('stopping %s' % service)
            self.root.run(['systemctl', 'stop', service], what='systemctl stop')
            try:
                self._wait_stopped(probe, 300)
            except EngineError as exc:
                exc.hint = ('nothing was restored and %s is untouched; see `systemctl status %s`, then start it '
                            'again (`systemctl start %s`) or run the PITR again once it has stopped'
                            % (data_dir, service, service))
                raise
            progress['stopped'] = True
            phases['stop'] = round(self.clock() - t0, 3)
        elif probe.running():
            raise Refused('PostgreSQL is running in %s although pg_lsclusters reports it down' % data_dir,
                          hint='stop it first')
        try:
            if data['mode'] == 'move_aside':
                t0 = self.clock()
                self._say('moving %s aside to %s' % (data_dir, data['aside_path']))
                group = self.root.run(['stat', '-c', '%G', data_dir], what='stat').stdout.strip() or cluster['owner']
                # Recorded before and after the rename: a run killed in between leaves both names in its record.
                self._mark(req, progress, 'moving the data directory aside', moving_aside_to=data['aside_path'])
                self.root.run(['mv', '-T', '--', data_dir, data['aside_path']], what='mv')
                progress['moved_aside_to'] = data['aside_path']
                self._mark(req, progress, 'data directory moved aside')
                self.root.run(['install', '-d', '-m', '0700', '-o', cluster['owner'], '-g', group, data_dir],
                              what='install -d')
                phases['move_aside'] = round(self.clock() - t0, 3)
            elif data['mode'] == 'fresh':
                # Also when it exists: a run killed inside `install -d` leaves it owned by root.
                self._mark(req, progress, 'creating the data directory')
                self.root.run(['install', '-d', '-m', '0700', '-o', cluster['owner'], '-g', cluster['owner'], data_dir],
                              what='install -d')
            t0 = self.clock()
            self._mark(req, progress, 'restoring (pgbackrest restore)%s' % (' in place, delta' if req.delta else ''))
            self._say('restoring backup set %s into %s' % (plan['backup_set']['label'], data_dir))
            result = self.runner.run(plan['restore_command'], check=False, stream=True)
            if result.rc != 0:
                raise error_from_result(result, 'pgbackrest restore')
            progress['restored'] = True
            phases['restore'] = round(self.clock() - t0, 3)
            probe.mark_log()
            self._mark(req, progress, 'recovering (server started)')
            self._say('starting %s; following recovery' % service)
            self.root.run(['systemctl', 'start', '--no-block', service], what='systemctl start')
            outcome = self._recover(req, plan, probe, psql, phases)
        except EngineError as exc:
            exc.hint = '; '.join(p for p in (exc.hint, self._rollback_hint(cluster, service, data, progress)) if p)
            raise
        outcome.update(data_directory=data_dir, moved_aside_to=progress['moved_aside_to'], service=service,
                       port=cluster['port'])
        return outcome

    def _wait_stopped(self, probe, timeout):
        deadline = self.clock() + timeout
        while probe.running():
            if self.clock() > deadline:
                raise EngineError('PostgreSQL did not stop within %d s' % timeout)
            self.sleep(0.2)

    def _recover(self, req, plan, probe, psql, phases, promote=None):
        """Follow the started server to its goal, verify, promote. Shared by in place and elsewhere."""
        target = req.target
        action = plan['recovery_target_action']
        goal = {'pause': GOAL_PAUSED, 'shutdown': GOAL_STOPPED, 'promote': GOAL_PROMOTED}[action]
        if target.kind == 'standby':
            goal = GOAL_STANDBY
        elif target.kind == 'latest':
            goal = GOAL_PROMOTED
        outcome = wait_for_recovery(probe, goal, req.timeout, progress=self.progress, clock=self.clock,
                                    sleep=self.sleep)
        phases['recovery'] = outcome['seconds']
        if outcome['consistent_after'] is not None:
            phases['consistent_after'] = outcome['consistent_after']
        result = {'changed': True, 'status': 'ok', 'plan': plan, 'target': target.as_dict(),
                  'backup_set': plan['backup_set']['label'], 'destination': req.destination}
        if target.kind == 'standby':
            wait = min(req.timeout, 90 if req.primary_conninfo else 15)
            result['standby'] = self._standby_status(probe, outcome, wait)
            if req.primary_conninfo and result['standby']['status'] != 'streaming':
                result['warnings'] = ['the standby replays WAL from the archive but does not stream from %s yet'
                                      % req.primary_conninfo]
            state = probe.state() or outcome['state'] or {}
            result.update(timeline=state.get('timeline'), promoted=False, in_recovery=True,
                          recovery_end_lsn=state.get('replay_lsn'), recovered_to=iso(state.get('last_replay_time_us')))
            return result
        t0 = self.clock()
        verification = verify_recovery(target, plan['position'], outcome['events'], outcome['state'])
        phases['verify'] = round(self.clock() - t0, 3)
        result['verification'] = verification
        if not verification['verified']:
            raise EngineError('recovery did NOT verifiably stop at the target: %s. The server is left %s and was not '
                              'promoted' % ('; '.join(verification['problems']) or 'no evidence',
                                            'stopped' if goal == GOAL_STOPPED else 'paused in recovery'),
                              stdout='\n'.join(outcome['log'].splitlines()[-40:]))
        state = outcome['state'] or {}
        if goal == GOAL_PAUSED and target.action == 'promote':
            t0 = self.clock()
            self._say('target verified (%s); promoting' % '; '.join(verification['evidence']))
            if psql.value('SELECT pg_promote(true, 300)') != 't':
                raise EngineError('promotion did not complete within 300 s', hint='read the server log')
            final = wait_for_recovery(probe, GOAL_PROMOTED, 300, clock=self.clock, sleep=self.sleep, poll=0.5)
            state = final['state'] or state
            # Promotion does not wait for a checkpoint: until one completes, pg_control still names the old
            # timeline and pgBackRest refuses to back up ("WAL timeline N does not match pg_control timeline").
            psql.rows('CHECKPOINT')
            phases['promote'] = round(self.clock() - t0, 3)
            if req.destination == 'in_place':
                result['reset_settings'] = self._reset_recovery_settings(psql)
        if goal == GOAL_STOPPED:
            result.update(promoted=False, in_recovery=True, timeline=None)
        else:
            result.update(promoted=not state.get('in_recovery', True), in_recovery=state.get('in_recovery'),
                          timeline=state.get('timeline'))
        if result.get('promoted'):
            result['writable_at'] = iso(int(self.clock() * SECOND))
        result.update(recovered_to=iso(state.get('last_replay_time_us')),
                      recovery_end_lsn=state.get('replay_lsn') or outcome['events'].get('redo_done_at'))
        return result

    def _reset_recovery_settings(self, psql):
        """pgBackRest wrote the recovery target into postgresql.auto.conf; on the promoted primary it
        would come back to life the day someone adds standby.signal. Remove it (restore_command stays)."""
        reset = []
        for name in RECOVERY_TARGET_SETTINGS:
            try:
                psql.rows('ALTER SYSTEM RESET %s' % name)
                reset.append(name)
            except EngineError:
                pass
        if reset:
            psql.rows('SELECT pg_reload_conf()')
        return reset

    def _standby_status(self, probe, outcome, timeout):
        deadline = self.clock() + timeout
        first = (outcome['state'] or {}).get('replay_lsn')
        while True:
            state = probe.state() or {}
            events = outcome['events']
            log = probe.log_since_mark()
            if log:
                events = parse_server_log(log)
            if state.get('wal_receiver') == 'streaming':
                return {'status': 'streaming', 'replay_lsn': state.get('replay_lsn')}
            moved = first and state.get('replay_lsn') and parse_lsn(state['replay_lsn']) > parse_lsn(first)
            if self.clock() > deadline:
                if moved or (state.get('in_recovery') and events['restored']):
                    return {'status': 'replaying', 'replay_lsn': state.get('replay_lsn'),
                            'restored_wal_files': len(events['restored'])}
                raise EngineError('the standby is consistent but neither streams from its primary nor replays WAL',
                                  hint='check primary_conninfo, pg_hba.conf on the primary and ~postgres/.pgpass')
            self.sleep(1)

    @staticmethod
    def _rollback_hint(cluster, service, data, progress):
        if not progress['moved_aside_to']:
            if data['mode'] == 'delta' and progress['stopped']:
                return 'the data directory was being overwritten in place (delta); restore again or choose another target'
            if data['mode'] == 'move_aside' and progress['stopped']:
                # Stopped by this run, not moved aside: production is down but intact.
                return ('nothing was restored: %(data)s is unchanged, but this run stopped %(svc)s; start it again '
                        'with: systemctl start %(svc)s' % {'data': cluster['data_directory'], 'svc': service})
            return None
        return ('the data directory before this run is intact at %(aside)s. To go back to it: systemctl stop %(svc)s; '
                'mv %(data)s %(data)s.failed-restore; mv %(aside)s %(data)s; systemctl start %(svc)s'
                % {'aside': progress['moved_aside_to'], 'svc': service, 'data': cluster['data_directory']})

    def _elsewhere(self, req, plan, progress):
        phases = progress['phases']
        data = plan['data_directory']
        inst = self._scratch(req, plan['pg_version'])
        inst.port = data['port']
        t0 = self.clock()
        self._say('restoring backup set %s into scratch instance %s (%s)'
                  % (plan['backup_set']['label'], inst.name, inst.data_directory))
        inst.create(plan['restore_command'], purpose='pitr restore elsewhere',
                    source={'stanza': self.pgbr.stanza, 'backup_set': plan['backup_set']['label'],
                            'target': req.target.as_dict()})
        progress['restored'] = True
        phases['restore'] = round(self.clock() - t0, 3)
        probe = inst.start()
        try:
            result = self._recover(req, plan, probe, inst.psql(), phases)
        except EngineError as exc:
            exc.hint = '; '.join(p for p in (exc.hint, 'the scratch instance %s is left as it is for inspection; '
                                             'remove it with state=absent' % inst.name) if p)
            raise
        result['scratch'] = inst.describe()
        result['archive_mode'] = inst.psql().value('SHOW archive_mode')
        if req.scratch_state == 'stopped':
            inst.stop()
        elif req.scratch_state == 'removed':
            inst.remove()
        result['scratch']['state'] = req.scratch_state
        result['scratch']['next'] = inst.how_to(req.scratch_state)
        self._say(result['scratch']['next'])
        return result

    def remove_scratch(self, name, base_dir=DEFAULT_BASE_DIR, check_mode=False):
        inst = ScratchInstance(self.runner, self.pgbr, self.pg_version or self._stanza_version(), name=name,
                               base_dir=base_dir)
        existed = inst.exists()
        if check_mode or not existed:
            return {'changed': existed, 'scratch': inst.describe()}
        inst.remove()
        return {'changed': True, 'scratch': inst.describe()}

    # --- audit -----------------------------------------------------------------------------------

    def _who(self, req):
        return req.requested_by or self.environ.get('SUDO_USER') or self.environ.get('USER') \
            or self.environ.get('LOGNAME') or 'unknown'

    def _fields(self, req, progress, result, error, started):
        plan = progress.get('plan') or {}
        result = result or {}
        return {
            'host': self.hostname, 'stanza': self.pgbr.stanza, 'requested_by': self._who(req), 'reason': req.reason,
            'target': req.target.as_dict(), 'destination': req.destination,
            'backup_set': (plan.get('backup_set') or {}).get('label'),
            'data_directory': (plan.get('data_directory') or {}).get('path')
            or (plan.get('data_directory') or {}).get('data_directory'),
            'moved_aside_to': progress.get('moved_aside_to'), 'window': plan.get('window'),
            'phases': dict(progress['phases'], total=round(self.clock() - started, 3)),
            'timeline': result.get('timeline'), 'recovered_to': result.get('recovered_to'),
            'recovery_end_lsn': result.get('recovery_end_lsn'), 'promoted': result.get('promoted'),
            'verification': result.get('verification'), 'scratch': result.get('scratch'),
            'error': error.full_message() if error is not None else None,
            'error_code': getattr(error, 'code', None), 'commands': list(self.runner.commands),
            'interrupted_runs': plan.get('interrupted_runs') or None, 'stale_lock': progress.get('stale_lock'),
            'archiving_disabled': bool(plan.get('archiving_disabled')),
        }

    def _audit(self, status, req, progress, result, error, started):
        fields = self._fields(req, progress, result, error, started)
        path = None
        if self.record_dir:
            job = 'pitr-restore-%s' % self.pgbr.stanza
            data = JobRecord(job, self.record_dir, **fields).finish(status)
            stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(self.clock()))
            directory = os.path.join(self.record_dir, AUDIT_SUBDIR)
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o750)
            path = os.path.join(directory, '%s-%s-%s.json' % (job, stamp, status))
            write_json_atomic(path, data)
            if self._running_record:
                # Finished, whatever the outcome: the record of the run in progress has served its purpose.
                if os.path.exists(self._running_record):
                    os.unlink(self._running_record)
                self._running_record = None
        line = ('pitr %s: stanza=%s host=%s by=%s target=%s destination=%s set=%s aside=%s%s' % (
            status, self.pgbr.stanza, self.hostname, fields['requested_by'], req.target.describe(), req.destination,
            fields['backup_set'] or '-', fields['moved_aside_to'] or '-',
            ' error=%s' % error.msg if error is not None else ''))
        if path:
            line += ' record=%s' % path
        self.root.run(['logger', '-t', 'pgops-backup', '-p', 'user.%s' % ('err' if error else 'notice'), '--', line],
                      check=False)
        return path


# --- helpers ---------------------------------------------------------------------------------------

def _archive_db_id(archive_id):
    """'17-2' -> 2 (PostgreSQL version and the stanza's database id)."""
    try:
        return int(str(archive_id).rsplit('-', 1)[1])
    except (IndexError, ValueError):
        return None


def _version_tuple(text):
    parts = [int(p) for p in re.findall(r'\d+', str(text))[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def _existing_parent(runner, path):
    while path not in ('', '/') and not path_exists(runner, path, '-d'):
        path = os.path.dirname(path)
    return path or '/'


def _size(value):
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024.0
    return str(value)


def describe_backup(backup):
    return 'ended %s, LSN %s, %s' % (iso(backup['stop'] * SECOND), backup['lsn_stop'], _size(backup.get('size') or 0))


def _public_backup(backup, reason):
    return {'label': backup['label'], 'type': backup['type'], 'start': iso(backup['start'] * SECOND),
            'stop': iso(backup['stop'] * SECOND), 'lsn_start': backup['lsn_start'], 'lsn_stop': backup['lsn_stop'],
            'wal_start': backup['wal_start'], 'size': backup.get('size'), 'repo_key': backup.get('repo_key'),
            'reason': reason}


def _public_position(position):
    out = {}
    for key in ('source', 'found', 'segment', 'end_lsn', 'scanned', 'record_kind', 'timeline'):
        if position.get(key) is not None:
            out[key] = position[key]
    if position.get('lsn') is not None:
        out['lsn'] = format_lsn(position['lsn'])
    if position.get('time_us') is not None:
        out['time'] = iso(position['time_us'])
    return out


def _public_cluster(cluster, source):
    if cluster is None:
        return None
    out = dict(cluster)
    out['service'] = 'postgresql@%s-%s.service' % (cluster['version'], cluster['name'])
    out['running'] = source['running']
    out['in_recovery'] = source['in_recovery']
    out['system_identifier'] = source['system_identifier']
    return out
