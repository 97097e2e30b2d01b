# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drills: restore the newest backup into a scratch instance, prove it, measure RTO and RPO.

Sources (restore_drill_sources):
- pgbackrest: the newest (or a chosen) backup set of a stanza, restored with pgBackRest into a
  scratch instance (scratch.ScratchInstance: own data directory and port, Unix socket only,
  archive_mode=off written three times), recovered to consistency (or replayed to a target) and
  promoted;
- pg_dump: the newest good dump of each database of a pg_dump job, restored (globals first) with
  dump_restore.RestoreJob into an empty scratch cluster made with initdb.

Then the checks (restore_drill_checks), each reported with pass/fail/skip and its evidence:
isolation of the scratch instance, recovery (pgBackRest) or restore + exact row counts against the
manifest (pg_dump), the heartbeat (RPO), pg_amcheck on every database, a full read of every table,
the user's SQL checks, and pg_checksums --check on the stopped instance. The scratch instance is
removed afterwards, or kept (stopped) after a failure when asked. The report is the drill's job
record `restore_test-NAME.json` (status ok/failed, finished_epoch, duration_seconds: what
metrics.py exports), with the timing of every phase: the time until the copy was usable is the
measured RTO.

Production is only read: `pgbackrest info` and the repository, the dump files, pg_lsclusters and
(for heartbeat=auto) whether the heartbeat table exists. Plain Python, no Ansible imports.
"""

import fcntl
import os
import pwd
import re
import socket
import tempfile
import time

from . import clock as wall_clock
from . import cluster_lock as cluster_lock_mod
from . import restore_drill_checks as checks_mod
from .cluster_lock import ClusterBusy, ClusterLock
from .dump_crypto import load_passphrase
from .pg_dump import Connection, Owner, remove_path
from .pgbackrest import PgBackRest
from .pgserver import GOAL_PROMOTED, bindir, directory_entries, iso, path_exists, pg_binary, PG_LIB
from .pitr import SECOND, TARGET_TYPES, Target, verify_recovery
from .postgres import Psql, list_clusters
from .process import EngineError
from .stanza import validate_stanza_name
from .records import DEFAULT_RECORD_DIR, JobRecord
from .restore_drill_checks import FAIL, HEARTBEAT_MODES, PASS, SKIP, Checks, failure, format_seconds, label, result
from .restore_drill_scratch import DRILL_PURPOSE, DrillInstance, DrillRestoreJob, EmptyInstance
from .restore_drill_sources import (DEFAULT_JOB_DIR, choose_pgbackrest_backup, current_database, describe_backup,
                                    find_dump_set, public_dump_set)
from .scratch import DEFAULT_BASE_DIR, NAME_RE as SCRATCH_NAME_RE, RESERVE_DEFAULT, parse_reserve, size_text

SOURCES = ('pgbackrest', 'pg_dump')
# pgBackRest errors of its configuration or of a lock: verifying the set would say nothing more.
CONFIG_ERRORS = (27, 31, 32, 37, 50, 62)
_VERIFY_RE = re.compile(r"INFO: ((?:invalid|missing|file missing|checksum)[^'\n]*'[^'\n]+')")
DRILL_TARGET_TYPES = tuple(t for t in TARGET_TYPES if t != 'standby')
RECORD_PREFIX = 'restore_test-'
LOCK_NAME = '.restore_test.lock'
REPORT_FORMAT = 1
MIB = 1024 * 1024
DEFAULTS = {
    'name': None, 'source': 'pgbackrest', 'stanza': None, 'config': None, 'backup_set': None, 'repo': None,
    'target_type': 'immediate', 'target': None, 'dump_job': None, 'dump_destination': None,
    'passphrase_file': None, 'sql_checks': [], 'heartbeat': 'auto', 'heartbeat_database': 'postgres',
    'heartbeat_max_age': '5m', 'amcheck': True, 'heapallindexed': True, 'full_read': True, 'checksums': True,
    'keep_failed': False, 'scratch_base_dir': DEFAULT_BASE_DIR, 'scratch_port': None, 'timeout': 3600,
    'pg_version': None, 'pg_cluster': 'main', 'jobs': 0, 'scratch_reserve': RESERVE_DEFAULT,
}
_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}


def parse_age(value):
    """'5m', '90s', '2h', 300 -> seconds; 0/''/None -> None (no limit)."""
    if value in (None, '', 0, '0'):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if value > 0 else None
    text = str(value).strip().lower()
    number, unit = text, ''
    if text and text[-1] in 'smhd':
        number, unit = text[:-1], text[-1]
    try:
        seconds = int(float(number) * _UNITS[unit])
    except ValueError:
        raise EngineError('%r is not a duration: use seconds or a number with s, m, h or d (e.g. 5m)' % (value,))
    return seconds or None


class Settings(object):
    """A drill's settings (the keys of DEFAULTS), validated before anything is read from the host."""

    def __init__(self, **values):
        unknown = sorted(set(values) - set(DEFAULTS))
        if unknown:
            raise EngineError('unknown restore drill setting(s): %s' % ', '.join(unknown),
                              hint='known settings: %s' % ', '.join(sorted(DEFAULTS)))
        merged = dict(DEFAULTS)
        merged.update(dict((k, v) for k, v in values.items() if v is not None))
        if merged['source'] not in SOURCES:
            raise EngineError('source must be one of %s, not %r' % (', '.join(SOURCES), merged['source']))
        merged['name'] = str(merged['name'] or merged['source'])
        if not SCRATCH_NAME_RE.match(merged['name']) or len(merged['name']) > 34:
            raise EngineError('drill name %r: use 1-34 lower-case letters, digits, _ and -' % merged['name'])
        if merged['source'] == 'pgbackrest' and not merged['stanza']:
            raise EngineError('a pgbackrest drill needs the stanza')
        validate_stanza_name(merged['stanza'])  # also when read from a drill file, not a flag
        if merged['target_type'] not in DRILL_TARGET_TYPES:
            raise EngineError('target_type must be one of %s, not %r' % (', '.join(DRILL_TARGET_TYPES),
                                                                         merged['target_type']))
        if merged['source'] == 'pg_dump' and (merged['backup_set'] or merged['target'] or merged['repo']
                                              or merged['target_type'] != 'immediate'):
            raise EngineError('backup_set, repo and targets are for the pgbackrest source')
        if merged['heartbeat'] not in HEARTBEAT_MODES:
            raise EngineError('heartbeat must be one of %s, not %r' % (', '.join(HEARTBEAT_MODES), merged['heartbeat']))
        if int(merged['timeout']) < 1:
            raise EngineError('timeout must be positive')
        target = None
        if merged['source'] == 'pgbackrest':
            target = Target(merged['target_type'], merged['target'], action='promote')
        merged['heartbeat_max_age_seconds'] = parse_age(merged['heartbeat_max_age'])
        merged['reserve'] = parse_reserve(merged['scratch_reserve'])
        merged['sql_checks'] = checks_mod.validate_sql_checks(merged['sql_checks'])
        merged['repo'] = int(merged['repo']) if merged['repo'] else None
        merged['scratch_port'] = int(merged['scratch_port']) if merged['scratch_port'] else None
        merged['timeout'] = int(merged['timeout'])
        self.values = merged
        for key, value in merged.items():
            setattr(self, key, value)
        self.target_value = merged['target']
        self.target = target  # the pitr.Target (None for the pg_dump source)

    @property
    def scratch_name(self):
        return 'drill-%s' % self.name

    @property
    def record_job(self):
        return RECORD_PREFIX + self.name

    def public(self):
        out = dict((k, v) for k, v in self.values.items() if k not in ('passphrase_file', 'reserve'))
        out['sql_checks'] = [c['name'] for c in self.sql_checks]
        return out


class DrillFailed(EngineError):
    """The drill ran and a check failed (or a phase could not complete): `report` says which."""

    def __init__(self, msg, report, hint=None):
        super(DrillFailed, self).__init__(msg, hint=hint)
        self.report = report


class Drill(object):
    """One restore drill on this host (see the module docstring)."""

    def __init__(self, runner, settings, record_dir=DEFAULT_RECORD_DIR, job_dir=DEFAULT_JOB_DIR, passphrase=None,
                 clock=None, sleep=time.sleep, progress=None, hostname=None, lock=True, lock_dir=None):
        self.runner = runner
        self.settings = settings
        self.record_dir = record_dir
        self.job_dir = job_dir
        self.passphrase = passphrase
        self.clock = clock or wall_clock.now
        self.sleep = sleep
        self.progress = progress
        self.hostname = hostname or socket.getfqdn()
        self.lock = lock
        self.lock_dir = lock_dir
        self.cluster_lock = None
        self.pgbr = PgBackRest(runner, stanza=settings.stanza, config=settings.config) \
            if settings.source == 'pgbackrest' else None

    def say(self, text):
        if self.progress:
            self.progress(text)

    # --- reading only: the plan --------------------------------------------------------------------

    def _production(self, version=None):
        """The production cluster of this host (pg_lsclusters): the one named pg_cluster, of `version` (the
        backed-up server's, when known) where two versions share the name; None when there is none. Never
        chosen by pg_version: that is the scratch instance's version, which may differ from production's."""
        try:
            named = [c for c in list_clusters(self.runner) if c['name'] == self.settings.pg_cluster]
        except EngineError:
            return None
        if len(named) > 1 and version:
            named = [c for c in named if c['version'] == str(version)]
        return named[0] if len(named) == 1 else None

    def plan(self):
        """What the drill will restore and check, from reads only. Raises EngineError when it cannot run."""
        s = self.settings
        started = self.clock()
        plan = {'name': s.name, 'source': s.source, 'host': self.hostname, 'record': self._record_path(),
                'settings': s.public()}
        production = None
        if s.source == 'pgbackrest':
            stanza = self.pgbr.stanza_info()
            db = current_database(stanza)
            version = str(db['version'])
            production = self._production(version)
            backup, reason = choose_pgbackrest_backup(stanza, s.target, s.backup_set, s.repo)
            plan.update(stanza=s.stanza, version=version, target=s.target.as_dict(),
                        backup=describe_backup(backup, reason), backup_label=backup['label'],
                        system_identifier=db['system_id'])
            size = backup.get('size') or 0
            plan['required_bytes'] = int(size * 1.1) + 256 * MIB
        else:
            production = self._production()
            dump_set = find_dump_set(self.record_dir, s.dump_job, s.dump_destination, self.job_dir)
            version = self._dump_version(dump_set, production)
            encrypted = [u['database'] for u in dump_set['units'] if u['encrypted']]
            if encrypted and self.passphrase is None:
                self.passphrase = load_passphrase(passphrase_file=s.passphrase_file or dump_set['passphrase_file'])
            if encrypted and self.passphrase is None:
                raise EngineError('the dumps of %s are encrypted and no passphrase is available' % ', '.join(encrypted),
                                  hint='give passphrase_file (the pg_dump role keeps it in /etc/pgops-backup/'
                                       'pg-dump.passphrase)')
            plan.update(version=version, dump_set=public_dump_set(dump_set), backup_label=None, target=None)
            plan['required_bytes'] = 3 * sum(u['size_bytes'] or 0 for u in dump_set['units']) + 256 * MIB
            self._dump_set = dump_set
        plan['production'] = {'cluster': '%s/%s' % (production['version'], production['name']),
                              'port': production['port'], 'data_directory': production['data_directory']} \
            if production else None
        for program in ('postgres', 'pg_ctl', 'pg_controldata', 'psql') + (('initdb',) if s.source == 'pg_dump' else ()):
            pg_binary(self.runner, version, program)
        inst = self._instance(version)
        existing = inst.marker() if inst.exists() else None
        if existing is not None and existing.get('purpose') != DRILL_PURPOSE:
            raise EngineError('%s exists and was not made by a restore drill: refusing to touch it' % inst.data_directory,
                              hint='choose another drill name or scratch_base_dir')
        if existing is None and inst.exists():
            raise EngineError('%s exists without a scratch marker: refusing to touch it' % inst.data_directory)
        port = inst.choose_port()
        if production and port == production['port']:
            raise EngineError('the scratch port %d is the production cluster\'s port' % port)
        space = inst.check_space(plan['required_bytes'], s.reserve)
        scratch = inst.describe()
        scratch.update(free_bytes=space['free_bytes'], replaces_kept=existing is not None, space=space)
        plan.update(scratch=scratch, checks=self._planned_checks(), seconds=round(self.clock() - started, 3))
        plan['steps'] = self._steps(plan)
        self._version = version
        return plan

    def _dump_version(self, dump_set, production):
        """Server binaries for the empty cluster: the dumped server's major when installed, else the
        oldest newer one installed (pg_restore reads older dumps)."""
        if self.settings.pg_version:
            return str(self.settings.pg_version)
        wanted = max(int(u['manifest'].get('server_version_num') or 0) // 10000 for u in dump_set['units'])
        installed = sorted(int(v) for v in (directory_entries(self.runner, PG_LIB) or []) if v.isdigit()
                           and path_exists(self.runner, os.path.join(bindir(v), 'initdb'), '-x'))
        newer = [v for v in installed if v >= wanted]
        if not newer:
            raise EngineError('no PostgreSQL server of version %d or later is installed to restore the dumps into'
                              % wanted, hint='install postgresql-%d (server binaries only; no cluster is needed)' % wanted)
        return str(newer[0])

    def _instance(self, version):
        s = self.settings
        cls = DrillInstance if s.source == 'pgbackrest' else EmptyInstance
        kwargs = dict(name=s.scratch_name, base_dir=s.scratch_base_dir, port=s.scratch_port, clock=self.clock,
                      sleep=self.sleep, progress=self.progress)
        if cls is DrillInstance:
            return DrillInstance(self.runner, self.pgbr, version, **kwargs)
        return EmptyInstance(self.runner, version, **kwargs)

    def _planned_checks(self):
        s = self.settings
        names = ['source', 'restore', 'recovery' if s.source == 'pgbackrest' else 'row_counts', 'isolation']
        names.append('heartbeat' if s.heartbeat != 'off' else 'heartbeat (off)')
        names += ['amcheck' if s.amcheck else 'amcheck (off)', 'full_read' if s.full_read else 'full_read (off)']
        names += ['sql:%s' % c['name'] for c in s.sql_checks]
        names.append('checksums' if s.checksums else 'checksums (off)')
        return names

    def _steps(self, plan):
        s = self.settings
        scratch = plan['scratch']
        steps = []
        if scratch['replaces_kept']:
            steps.append('remove the scratch instance %s kept by an earlier drill' % scratch['name'])
        if s.source == 'pgbackrest':
            steps.append('restore backup set %s of stanza %s into scratch instance %s (%s, port %s, archive_mode=off)'
                         % (plan['backup_label'], s.stanza, scratch['name'], scratch['data_directory'], scratch['port']))
            steps.append('start it and wait until it reaches %s and promotes (timeout %d s)' % (
                s.target.describe(), s.timeout))
        else:
            steps.append('create an empty cluster with initdb in %s (port %s, archive_mode=off) and start it'
                         % (scratch['data_directory'], scratch['port']))
            steps.append('restore the globals, then %s from the newest good dumps of job %s; compare every table\'s rows '
                         'with the manifest' % (', '.join(plan['dump_set']['databases']), plan['dump_set']['job']))
        steps.append('check: %s' % ', '.join(c for c in plan['checks'] if '(off)' not in c))
        steps.append('stop the scratch instance%s, then remove it%s' % (
            ' and run pg_checksums --check' if s.checksums else '',
            ' (kept, stopped, when the drill fails)' if s.keep_failed else ''))
        return steps

    # --- the run -------------------------------------------------------------------------------------

    def _record_path(self):
        return os.path.join(self.record_dir, self.settings.record_job + '.json') if self.record_dir else None

    def run(self, check_mode=False):
        """Check mode: the plan. Otherwise the drill; returns the report, raises DrillFailed (with the
        report) when anything failed. Every real run writes the record, whatever happened."""
        if check_mode:
            plan = self.plan()
            plan['status'] = 'planned'
            return plan
        lock = self._lock()
        try:
            try:
                held = self._take_cluster_locks()
            except ClusterBusy as exc:
                # The timer's last record says why it did not run (a recovery of the cluster is going on).
                if self.record_dir:
                    s = self.settings
                    JobRecord(s.record_job, self.record_dir, name=s.name, source=s.source, host=self.hostname,
                              report_format=REPORT_FORMAT).finish('skipped', reason=exc.msg, hint=exc.hint)
                raise
            try:
                return self._run()
            finally:
                for cluster in held:
                    cluster.release()
        finally:
            if lock is not None:
                os.close(lock)

    def _production_keys(self):
        """'VERSION/NAME' of every cluster of this host that can be the drill's production cluster: all
        those named pg_cluster. pg_version is the scratch instance's version, not production's, and two
        versions of one name (a pg_upgradecluster leftover) make find_cluster ambiguous: neither may leave
        a drill without the lock of the cluster a recovery is running on."""
        try:
            clusters = list_clusters(self.runner)
        except EngineError:
            return []
        return sorted('%s/%s' % (c['version'], c['name']) for c in clusters if c['name'] == self.settings.pg_cluster)

    def _take_cluster_locks(self):
        """The locks of the production cluster(s) (_production_keys), taken one by one; a busy one
        releases those already taken and refuses the drill."""
        held = []
        try:
            for key in (self._production_keys() if self.lock else []):
                held.append(self._take_cluster_lock(key))
        except BaseException:
            for lock in held:
                lock.release()
            raise
        if held:
            self.cluster_lock = dict(self.cluster_lock, cluster=', '.join(lock.cluster for lock in held))
        return held

    def _take_cluster_lock(self, key):
        """The lock of a production cluster whose backups (or dumps) the drill restores, shared with
        in-place PITR, standby rebuild and dump restores: a drill never runs during a recovery of it.
        Refused at once (ClusterBusy, naming the holder) before anything is read or changed."""
        try:
            entry = pwd.getpwnam(self.runner.run_as or 'postgres')
            uid, gid = entry.pw_uid, entry.pw_gid
        except KeyError:
            uid = gid = None
        lock = ClusterLock(key, job='restore drill %s' % self.settings.name,
                           lock_dir=self.lock_dir or cluster_lock_mod.DEFAULT_LOCK_DIR, owner_uid=uid, owner_gid=gid,
                           details={'drill': self.settings.name, 'stop': 'systemctl stop pgops-restore-test-%s'
                                    % self.settings.name})
        lock.acquire()  # ClusterBusy, or an EngineError naming the lock directory and how to create it
        self.cluster_lock = {'cluster': key, 'path': lock.path, 'stale': lock.stale}
        if lock.stale:
            self.say('cluster %s: the lock of an earlier %s (pid %s) that ended without releasing it was cleared'
                     % (key, lock.stale.get('job'), lock.stale.get('pid')))
        return lock

    def _lock(self):
        """One drill at a time on a host: they would compete for ports, memory and I/O. The lock file
        is opened read-only, so that root (the module) and postgres (the timer) share it."""
        if not (self.lock and self.record_dir):
            return None
        if not os.path.isdir(self.record_dir):
            os.makedirs(self.record_dir, 0o750)
        fd = os.open(os.path.join(self.record_dir, LOCK_NAME), os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError):
            self.say('another restore drill is running on this host; waiting for it to finish')
            fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _run(self):
        s = self.settings
        record = JobRecord(s.record_job, self.record_dir, name=s.name, source=s.source, host=self.hostname,
                           report_format=REPORT_FORMAT) if self.record_dir else None
        started = self.clock()
        report = {'report_format': REPORT_FORMAT, 'name': s.name, 'source': s.source, 'host': self.hostname,
                  'stanza': s.stanza, 'backup': None, 'backup_label': None, 'target': None, 'dump_set': None,
                  'scratch': None, 'phases': {}, 'checks': [], 'rto_seconds': None, 'rpo_seconds': None,
                  'error': None, 'hint': None, 'kept': False, 'started_epoch': round(started, 3),
                  'settings': s.public(), 'cluster_lock': self.cluster_lock}
        self._started = started
        inst = None
        error = aborted = None
        try:
            t0 = self.clock()
            try:
                plan = self.plan()
            except EngineError as exc:
                report['checks'].append(failure('source', exc, self.clock() - t0))
                raise
            report['phases']['preflight'] = round(self.clock() - t0, 3)
            report.update(backup=plan.get('backup'), backup_label=plan.get('backup_label'), target=plan.get('target'),
                          dump_set=plan.get('dump_set'), version=plan['version'], production=plan['production'])
            inst = self._instance(plan['version'])
            inst.port = plan['scratch']['port']
            report['scratch'] = inst.describe()
            report['space'] = plan['scratch']['space']
            if plan['scratch']['replaces_kept']:
                self.say('removing the scratch instance %s kept by an earlier drill' % inst.name)
                inst.remove()
            report['checks'].append(self._source_check(plan, report['phases']['preflight']))
            if s.source == 'pgbackrest':
                self._pgbackrest(plan, inst, report)
            else:
                self._pg_dump(plan, inst, report)
        except EngineError as exc:
            error = exc
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # pylint: disable=broad-exception-caught
            # Stopped (SIGTERM from systemd) or a bug: clean up, record the failure, then let it go on.
            aborted = exc
            error = EngineError('the drill was interrupted (%s: %s); the scratch instance was cleaned up'
                                % (exc.__class__.__name__, exc))
        finally:
            self._finish_instance(inst, report, error)
        report['phases']['total'] = round(self.clock() - started, 3)
        failed = [c for c in report['checks'] if c['status'] == FAIL]
        report['checks_passed'] = len([c for c in report['checks'] if c['status'] == PASS])
        report['checks_failed'] = len(failed)
        report['checks_skipped'] = len([c for c in report['checks'] if c['status'] == SKIP])
        report['failed_checks'] = [label(c) for c in failed]
        if error is not None and not failed:
            report['checks'].append(failure('drill', error))
            failed = report['checks'][-1:]
            report['failed_checks'] = ['drill']
            report['checks_failed'] = 1
        status = 'failed' if failed else 'ok'
        report['status'] = status
        if failed:
            report['error'] = 'restore drill %s failed: %s' % (s.name, '; '.join(
                '%s: %s' % (label(c), c['detail']) for c in failed))
            report['hint'] = (error.hint if error is not None and error.hint else None) or _triage_hint(failed, report)
        report['size_bytes'] = (report.get('backup') or {}).get('size') or sum(
            u.get('size_bytes') or 0 for u in (report.get('dump_set') or {}).get('units', []))
        report['commands'] = list(self.runner.commands)
        if record is not None:
            fields = dict((k, v) for k, v in report.items() if k != 'status')
            report = record.finish(status, **fields)
            report['record'] = self._record_path()
        report['lines'] = render_report(report)
        if aborted is not None:
            raise aborted
        if failed:
            raise DrillFailed(report['error'], report, hint=report['hint'])
        return report

    def _source_check(self, plan, seconds):
        if plan['source'] == 'pgbackrest':
            b = plan['backup']
            detail = 'stanza %s, backup %s (%s, ended %s, %s, %s)' % (
                plan['stanza'], b['label'], b['type'], b['stop'], size_text(b['size'] or 0), b['reason'])
            if b['error']:
                return result('source', FAIL, '%s: pgBackRest flagged this backup with errors (page checksum errors '
                                              'found while it was taken)' % detail, seconds)
            return result('source', PASS, detail, seconds)
        d = plan['dump_set']
        oldest = min(u['finished_epoch'] or 0 for u in d['units'])
        return result('source', PASS, 'pg_dump job %s in %s: %d database(s) (%s), oldest dump finished %s' % (
            d['job'] or '-', d['destination'], len(d['units']), ', '.join(d['databases']), iso(int(oldest * SECOND))),
            seconds)

    # --- pgBackRest -----------------------------------------------------------------------------------

    def _pgbackrest(self, plan, inst, report):
        s = self.settings
        phases = report['phases']
        label_ = plan['backup_label']
        self.say('restoring backup set %s of stanza %s into scratch instance %s' % (label_, s.stanza, inst.name))
        t0 = self.clock()
        try:
            inst.create(inst.restore_argv(s.target, backup_set=label_, repo=s.repo, action='promote'),
                        purpose=DRILL_PURPOSE, source={'stanza': s.stanza, 'backup_set': label_, 'drill': s.name})
        except EngineError as exc:
            check = failure('restore', exc, self.clock() - t0)
            findings = self._verify_set(label_, exc)
            if findings:
                check['detail'] += '; pgbackrest verify of the set found: %s' % '; '.join(findings[:5])
                check['verify'] = findings
            report['checks'].append(check)
            phases['restore'] = round(self.clock() - t0, 3)
            return
        phases['restore'] = round(self.clock() - t0, 3)
        report['checks'].append(result('restore', PASS, 'pgbackrest restore of %s into %s' % (
            label_, inst.data_directory), phases['restore']))
        t0 = self.clock()
        self.say('starting the scratch instance on port %d; following recovery' % inst.port)
        try:
            inst.start()
            phases['start'] = round(self.clock() - t0, 3)
            t0 = self.clock()
            outcome = inst.wait(GOAL_PROMOTED, timeout=s.timeout)
        except EngineError as exc:
            phases['recovery'] = round(self.clock() - t0, 3)
            report['checks'].append(failure('recovery', exc, phases['recovery']))
            return
        phases['recovery'] = round(self.clock() - t0, 3)
        if outcome['consistent_after'] is not None:
            phases['consistent_after'] = outcome['consistent_after']
        report['rto_seconds'] = round(self.clock() - self._started, 3)
        state = outcome['state'] or {}
        verification = verify_recovery(s.target, {}, outcome['events'], state)
        report['recovered_to'] = iso(state.get('last_replay_time_us')) if state.get('last_replay_time_us') else None
        report['recovery_end_lsn'] = state.get('replay_lsn') or outcome['events'].get('redo_done_at')
        report['timeline'] = state.get('timeline')
        detail = 'reached %s in %s (consistent after %s) and promoted: timeline %s, replayed to %s' % (
            s.target.describe().replace(', then promote', ''), format_seconds(phases['recovery']),
            format_seconds(outcome['consistent_after']), state.get('timeline'), report['recovery_end_lsn'] or '?')
        if not verification['verified']:
            report['checks'].append(result('recovery', FAIL, '%s, but: %s' % (detail, '; '.join(
                verification['problems']) or 'no evidence in the server log'), phases['recovery']))
        else:
            report['checks'].append(result('recovery', PASS, '%s; %s' % (detail, '; '.join(verification['evidence'])),
                                           phases['recovery']))
        reference, what = self._reference(plan, state)
        self._common_checks(inst, report, reference, what, in_set=True)

    def _verify_set(self, label_, exc):
        """After a failed restore: which files of the set are damaged, by `pgbackrest verify --set`
        (reads the repository only). None when verify is not available or found nothing."""
        if exc.code is None or exc.code in CONFIG_ERRORS:
            return None
        self.say('restore failed: verifying backup set %s to find the damaged files' % label_)
        options = ['--set=%s' % label_, '--log-level-console=info']
        if self.settings.repo:
            options.append('--repo=%d' % self.settings.repo)
        run = self.runner.run(self.pgbr.argv('verify', *options), check=False)
        found = _VERIFY_RE.findall((run.stdout or '') + '\n' + (run.stderr or ''))
        return list(dict.fromkeys(found)) or None

    def _reference(self, plan, state):
        """When the restored copy should be current to, for the heartbeat check."""
        target = self.settings.target
        backup = plan['backup']
        if target.kind == 'immediate':
            return backup['stop_epoch'], 'the end of backup %s' % backup['label']
        if target.kind == 'latest':
            return self._started, 'the start of the drill (replayed to the end of the archive)'
        if target.kind == 'time':
            return target.time_us / float(SECOND), 'the target %s' % target.value
        if state.get('last_replay_time_us'):
            return state['last_replay_time_us'] / float(SECOND), 'the last replayed transaction'
        return backup['stop_epoch'], 'the end of backup %s' % backup['label']

    # --- pg_dump --------------------------------------------------------------------------------------

    def _pg_dump(self, plan, inst, report):
        s = self.settings
        phases = report['phases']
        dump_set = self._dump_set
        t0 = self.clock()
        self.say('creating an empty scratch cluster %s (PostgreSQL %s) on port %d' % (inst.name, inst.version, inst.port))
        try:
            inst.create_empty(source={'dump_job': dump_set['job'], 'destination': dump_set['destination'],
                                      'drill': s.name})
            phases['initdb'] = round(self.clock() - t0, 3)
            t0 = self.clock()
            inst.start()
            inst.wait(GOAL_PROMOTED, timeout=min(s.timeout, 600))
            phases['start'] = round(self.clock() - t0, 3)
        except EngineError as exc:
            exc.msg = 'the empty scratch cluster did not start: %s' % exc.msg
            report['checks'].append(failure('restore', exc, self.clock() - t0))
            return
        checker = Checks(self.runner, inst, clock=self.clock, say=self.say)
        t0 = self.clock()
        restored = []
        work = _work_dir(inst)
        try:
            for index, unit in enumerate(_globals_first(dump_set['units'])):
                check, ok = self._restore_unit(inst, unit, index == 0, work)
                report['checks'].append(check)
                if ok:
                    restored.append(unit)
                    report['checks'].append(checker.row_counts(unit['database'], unit['manifest']))
        finally:
            remove_path(work)
        phases['restore'] = round(self.clock() - t0, 3)
        report['rto_seconds'] = round(self.clock() - self._started, 3)
        reference, what = None, None
        in_set = False
        for unit in dump_set['units']:
            if unit['database'] == s.heartbeat_database:
                in_set = True
                reference = unit['started_epoch']
                what = 'the dump snapshot of %s (%s)' % (s.heartbeat_database, iso(int(reference * SECOND)))
        self._common_checks(inst, report, reference, what, in_set=in_set, databases=[u['database'] for u in restored])

    def _restore_unit(self, inst, unit, with_globals, work):
        s = self.settings
        database = unit['database']
        self.say('restoring %s from %s' % (database, unit['path']))
        t0 = self.clock()
        job = DrillRestoreJob(
            self.runner, unit['path'], database, tablespace_root=inst.tablespace_directory, jobs=s.jobs,
            include_globals=with_globals and unit['globals'], drop_existing=True, passphrase=self.passphrase,
            connection=Connection(port=inst.port, host=inst.socket_dir), bin_dir=_client_dir(inst.version), compare=False,
            work_dir=work, say=self.say)
        try:
            outcome = job.run()
        except EngineError as exc:
            return failure('restore', exc, self.clock() - t0, database=database), False
        detail = 'dump of %s (%s%s, %s) verified against its checksums and restored%s in %s' % (
            unit['finished_at'], unit['format'], ', encrypted' if unit['encrypted'] else '', size_text(unit['size_bytes'] or 0),
            ' after the globals' if outcome['globals_restored'] else '', format_seconds(outcome['restore_seconds']))
        if job.relocated:
            detail += '; tablespaces created inside the scratch instance: %s' % ', '.join(n for n, _o, _l in job.relocated)
        return result('restore', PASS, detail, self.clock() - t0, database=database), True

    # --- shared by both sources ------------------------------------------------------------------------

    def _common_checks(self, inst, report, reference, reference_what, in_set=True, databases=None):
        s = self.settings
        # The moment this drill restored to: a passed drill is evidence that the recovery window
        # (pgops-backup window) really reaches back to it.
        report['recovery_point'] = {'epoch': reference, 'iso': iso(int(reference * SECOND)) if reference else None,
                                    'description': reference_what}
        checker = Checks(self.runner, inst, clock=self.clock, say=self.say)
        phases = report['phases']
        t0 = self.clock()
        production = report.get('production')
        report['checks'].append(checker.isolation(production['port'] if production else None))
        if report['checks'][-1]['status'] == FAIL:
            # Not isolated: stop at once, check nothing more.
            inst.stop()
            return
        self.say('checking the heartbeat')
        prod_psql = Psql(self.runner, port=production['port']) if production else None
        hb = checker.heartbeat(s.heartbeat, s.heartbeat_database, s.heartbeat_max_age_seconds, reference,
                               reference_what, self._started, production=prod_psql, in_set=in_set)
        report['checks'].append(hb)
        if hb.get('rpo_seconds') is not None:
            report['rpo_seconds'] = hb['rpo_seconds']
        try:
            names = checker.databases()
        except EngineError as exc:
            exc.msg = 'cannot list the databases of the scratch instance: %s' % exc.msg
            report['checks'].append(failure('databases', exc))
            return
        if databases is not None:
            names = [n for n in names if n in databases]
        for name in names:
            if s.amcheck:
                self.say('pg_amcheck on %s' % name)
                report['checks'].append(checker.amcheck(name, s.heapallindexed))
            if s.full_read:
                self.say('reading every table of %s' % name)
                report['checks'].append(checker.full_read(name))
        for spec in s.sql_checks:
            report['checks'].append(checker.sql(spec))
        checksums_on = checker.facts()['data_checksums']
        phases['checks'] = round(self.clock() - t0, 3)
        t0 = self.clock()
        self.say('stopping the scratch instance')
        inst.stop()
        phases['stop'] = round(self.clock() - t0, 3)
        if s.checksums:
            self.say('pg_checksums --check on the stopped scratch instance')
            check = checker.checksums(checksums_on)
            report['checks'].append(check)
            phases['checksums'] = check['seconds']

    def _finish_instance(self, inst, report, error):
        """Remove the scratch instance, or keep it (stopped) after a failure when asked."""
        if inst is None:
            return
        s = self.settings
        failed = error is not None or any(c['status'] == FAIL for c in report['checks'])
        t0 = self.clock()
        scratch = report.get('scratch') or inst.describe()
        try:
            if failed and s.keep_failed:
                inst.stop()
                report['kept'] = True
                scratch.update(state='kept', removed=False)
                self.say('drill failed: scratch instance %s kept (stopped) in %s' % (inst.name, inst.data_directory))
            else:
                removed = inst.remove()
                if inst.exists():
                    raise EngineError('the scratch instance %s is still there after removal' % inst.name)
                scratch.update(state='removed', removed=bool(removed))
        except EngineError as exc:
            exc.msg = 'could not remove the scratch instance: %s' % exc.msg
            report['checks'].append(failure('cleanup', exc, self.clock() - t0))
            scratch.update(state='unknown', removed=False)
        report['scratch'] = scratch
        report['phases']['cleanup'] = round(self.clock() - t0, 3)

    # --- removing a kept instance ---------------------------------------------------------------------

    def remove_kept(self):
        """Remove the scratch instance a failed drill kept. Returns True when there was one."""
        inst = self._instance(self.settings.pg_version or self._kept_version())
        if not inst.exists():
            return False
        marker = inst.marker() or {}
        if marker.get('purpose') != DRILL_PURPOSE:
            raise EngineError('%s was not made by a restore drill: refusing to remove it' % inst.data_directory)
        return inst.remove()

    def _kept_version(self):
        probe = DrillInstance(self.runner, self.pgbr, '0', name=self.settings.scratch_name,
                              base_dir=self.settings.scratch_base_dir)
        marker = probe.marker() or {}
        return str(marker.get('version') or '0')


def _client_dir(version):
    """The client programs of the scratch server's version (pg_restore must not be older than the
    dump, psql matches the server); PATH (postgresql-common's wrappers) when they are not there."""
    path = bindir(version)
    return path if os.access(os.path.join(path, 'pg_restore'), os.X_OK) else None


def _globals_first(units):
    """The dump restored first is the newest one that carries the globals (roles, tablespaces)."""
    with_globals = [u for u in units if u['globals']]
    if not with_globals:
        return list(units)
    first = with_globals[0]
    return [first] + [u for u in units if u is not first]


def _work_dir(inst):
    """A private directory in the scratch base directory for decrypted dumps and the globals copy."""
    if not os.path.isdir(inst.base_dir):
        inst.runner.run(['mkdir', '-p', '-m', '0700', inst.base_dir], what='mkdir')
    path = tempfile.mkdtemp(prefix='.%s-work-' % inst.name, dir=inst.base_dir)
    Owner(inst.runner.run_as)(path)
    return path


def _triage_hint(failed, report):
    names = set(c['name'] for c in failed)
    if 'source' in names:
        return 'nothing was restored: fix the source (stanza, backups, dump job) first'
    if 'restore' in names:
        if report['source'] == 'pgbackrest':
            return ('the repository could not be restored from: run `pgbackrest verify` and take a new full backup; '
                    'see docs/restore-drills.md')
        return 'the dump did not restore: take a new dump and read the pg_dump job record; see docs/restore-drills.md'
    if 'recovery' in names:
        return 'the backup restored but did not recover: read the scratch server log (see scratch.log_file)'
    if 'cleanup' in names:
        return 'remove the scratch instance by hand: pgops-backup restore-test --remove-kept --name %s' % report['name']
    return 'see docs/restore-drills.md for what each failed check means'


# --- the report as people read it -----------------------------------------------------------------------

def render_report(report):
    """The report as lines of text: a header, the phases, one row per check."""
    status = {'ok': 'PASSED', 'failed': 'FAILED'}.get(report.get('status'), str(report.get('status')).upper())
    lines = ['Restore drill %s on %s: %s' % (report.get('name'), report.get('host'), status)]
    if report.get('source') == 'pgbackrest':
        backup = report.get('backup') or {}
        lines.append('  source:    pgBackRest stanza %s, backup %s (%s, ended %s)' % (
            report.get('stanza'), backup.get('label', '-'), backup.get('type', '-'), backup.get('stop', '-')))
        if report.get('target'):
            lines.append('  target:    %s' % report['target'].get('description'))
    else:
        dump_set = report.get('dump_set') or {}
        lines.append('  source:    pg_dump job %s, %s' % (dump_set.get('job', '-'), ', '.join(
            '%s (%s)' % (u['database'], u['finished_at']) for u in dump_set.get('units', [])) or '-'))
    scratch = report.get('scratch') or {}
    if scratch:
        lines.append('  scratch:   %s on port %s, %s' % (
            scratch.get('data_directory'), scratch.get('port'), scratch.get('state', '-')))
    phases = report.get('phases') or {}
    order = [k for k in phases if k not in ('consistent_after', 'total')] + ['total']
    lines.append('  RTO:       %s (until the restored copy was usable)   RPO: %s (heartbeat)' % (
        format_seconds(report.get('rto_seconds')), format_seconds(report.get('rpo_seconds'))))
    lines.append('  phases:    %s' % ', '.join('%s %s' % (k, format_seconds(phases[k])) for k in order if k in phases))
    rows = [(label(c), c['status'].upper(), format_seconds(c.get('seconds')), c['detail']) for c in report.get('checks', [])]
    width = max([len(r[0]) for r in rows] + [5])
    lines.append('  %-*s  %-6s %9s  %s' % (width, 'CHECK', 'RESULT', 'TIME', 'DETAIL'))
    for name, outcome, seconds, detail in rows:
        lines.append('  %-*s  %-6s %9s  %s' % (width, name, outcome, seconds, detail))
    if report.get('error'):
        lines.append('  error:     %s' % report['error'])
    if report.get('hint'):
        lines.append('  next step: %s' % report['hint'])
    if report.get('record'):
        lines.append('  record:    %s' % report['record'])
    return lines
