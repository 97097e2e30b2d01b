#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pitr_restore
short_description: Point-in-time recovery from pgBackRest, in place, into a scratch instance, or as a standby rebuild
version_added: 0.1.0
description:
  - Restores a PostgreSQL cluster from a pgBackRest stanza to a recovery target (a time, a transaction id, a restore
    point name, a WAL location, the end of a backup, or the end of the archive) and proves it got there.
  - B(Preflight) reads only, and runs before anything is stopped or moved. It reads C(pgbackrest info --output=json),
    locates the target in the archived WAL (C(archive-get) of segments into a temporary directory and C(pg_waldump)),
    computes the recoverable window (after the stop of the oldest usable backup, up to the newest archived WAL),
    chooses the backup set that precedes the target and passes it with C(--set), checks that every WAL segment from
    that backup to the target is archived (C(repo-ls)), that WAL fetch works, that versions and the system identifier
    match and that there is room. A target outside the window fails here, with the window in the message.
  - When the target is newer than the archived WAL but the running cluster already has it, C(pgbackrest check)
    switches WAL and waits until it is archived (O(switch_wal)), and preflight runs again.
  - B(In place), the current data directory is moved aside with a timestamped name and never deleted; O(delta=true)
    overwrites it in place instead. A running cluster is refused unless O(stop_cluster=true).
  - PostgreSQL starts with C(recovery_target_action=pause). Paused at the target, the server log (C(recovery stopping
    before commit of transaction ...)) and C(pg_last_xact_replay_timestamp()) / C(pg_last_wal_replay_lsn()) are compared
    with the target; only a verified recovery is promoted. A recovery that stopped anywhere else is left paused and the
    module fails.
  - B(Elsewhere), the backup is restored into a scratch instance with its own data directory and port on this host,
    with C(archive_mode=off) (written by pgBackRest, in its configuration, and on the server command line), so it can
    never push WAL into the source stanza. This is the way to inspect the state before an incident.
  - B(Standby rebuild) (O(target_type=standby)) restores with C(--type=standby) and verifies that the standby then
    streams from its primary or replays WAL from the archive. A running primary is never rebuilt.
  - Every run that is not in check mode leaves an audit record (who, when, target, backup set, moved-aside path,
    result, per-phase durations) as JSON in O(record_dir) and a line in the journal (tag C(pgops-backup)).
  - An in-place run writes its audit record at the first change (C(pitr-audit/...-running.json), naming where the data
    directory went) and updates it at each step; a run killed in the middle is reported by the next plan or run with
    the place of the old data directory.
  - A data directory that is a mount point, or whose C(pg_wal) is a symbolic link, is refused before the cluster is
    stopped (it cannot be moved aside); restore elsewhere, or mount a fresh volume.
  - In check mode only preflight runs; the module returns the plan and changes nothing.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - pgops.backup.pgbackrest
options:
  stanza:
    description: Name of the pgBackRest stanza to restore from.
    type: str
    required: true
  target_type:
    description:
      - C(time), C(xid), C(name) and C(lsn) need O(target).
      - C(immediate) stops as soon as the backup is consistent; C(latest) replays all archived WAL.
      - C(standby) rebuilds the cluster as a standby (in place only).
    type: str
    required: true
    choices: [time, xid, name, lsn, immediate, latest, standby]
  target:
    description:
      - The recovery target for O(target_type=time) (a timestamp B(with its UTC offset), for example
        C(2026-05-02 14:29:59+02)), C(xid) (a transaction id), C(name) (a restore point name) or C(lsn) (for example
        C(0/3000060)).
    type: str
  inclusive:
    description: Whether recovery stops just after (true) or just before (false) a time, xid or lsn target.
    type: bool
    default: true
  action:
    description:
      - What the server does at the target, after verification. C(promote) opens it for writes on a new timeline;
        C(pause) leaves it paused in read-only recovery (promote later with C(SELECT pg_promote())); C(shutdown) stops it.
    type: str
    choices: [promote, pause, shutdown]
    default: promote
  timeline:
    description: Recovery target timeline (C(latest), C(current) or a number). PostgreSQL's default (C(latest)) when omitted.
    type: str
  backup_set:
    description: Backup set label to restore. When omitted, the newest backup that ends before the target is chosen.
    type: str
  repo:
    description: Repository number to restore from. All repositories when omitted.
    type: int
  destination:
    description: Restore over the cluster (C(in_place)) or into a scratch instance on this host (C(elsewhere)).
    type: str
    choices: [in_place, elsewhere]
    default: in_place
  pg_version:
    description: Major version of the cluster. When omitted, the only cluster named O(pg_cluster) is used.
    type: str
  pg_cluster:
    description: Name of the cluster (postgresql-common).
    type: str
    default: main
  stop_cluster:
    description: Stop the running cluster before an in-place restore. Without it a running cluster is refused.
    type: bool
    default: false
  delta:
    description:
      - Restore in place with C(--delta), overwriting the current data directory instead of moving it aside.
        Faster for large clusters; the current contents are B(not) kept.
    type: bool
    default: false
  switch_wal:
    description:
      - Allow C(pgbackrest check) to switch WAL on the running cluster when the target is newer than the archived WAL.
    type: bool
    default: true
  wal_scan_segments:
    description: How many archived WAL segments preflight may decode (newest first) to locate an xid or restore point.
    type: int
    default: 256
  timeout:
    description: Seconds to wait for recovery to reach the target.
    type: int
    default: 3600
  primary_conninfo:
    description:
      - Connection string of the primary for O(target_type=standby), written to C(postgresql.auto.conf).
      - A password in any form (C(password=), C(sslpassword=), C(postgresql://user:password@host), C(?password=)) is
        refused before anything changes; put it in C(~postgres/.pgpass) (owner postgres, mode 0600) or in a 0600 file
        owned by postgres named with C(passfile=) in the conninfo. The option is C(no_log).
    type: str
  allow_standby:
    description:
      - An in-place recovery is refused when the cluster is a standby (C(pg_is_in_recovery()), C(standby.signal), or
        pg_control says it was last in recovery) or a primary that does not archive into O(stanza); promoting it would
        make a second writable primary with the stanza's system identifier and fork its timeline history.
      - V(true) recovers it anyway as a separate primary and restores it with C(archive_mode=off), so the forked timeline
        never reaches the stanza; the plan says so. No backup of it goes to the stanza.
    type: bool
    default: false
  force_rebuild:
    description:
      - A standby rebuild (O(target_type=standby)) is refused when the stopped cluster was last a primary (pg_control
        C(Database cluster state) not C(shut down in recovery), no C(standby.signal)); its unarchived WAL would be
        overwritten. V(true) rebuilds it anyway.
    type: bool
    default: false
  lock_dir:
    description:
      - Directory of the per-cluster locks. In-place recoveries and standby rebuilds hold the lock of their cluster;
        a second run is refused naming the first; a lock left by a killed run is reported and cleared.
    type: path
    default: /run/pgops-backup/locks
  scratch_name:
    description: Name of the scratch instance for O(destination=elsewhere).
    type: str
    default: pitr
  scratch_port:
    description: Port of the scratch instance. The first free port from 5433 when omitted.
    type: int
  scratch_base_dir:
    description: Directory that holds scratch instances.
    type: path
    default: /var/lib/postgresql/pgops-scratch
  scratch_state:
    description:
      - What to do with the scratch instance once recovery is verified. C(stopped) (the default) stops it, so that a
        forgotten instance does not hold memory, a port and WAL; C(running) keeps it running for inspection;
        C(removed) deletes it.
      - C(scratch.next) in the result says how to reach it, or how to start, stop and remove it. It accepts only the OS user
        postgres on its Unix socket (C(local all postgres peer)), never TCP.
    type: str
    choices: [running, stopped, removed]
    default: stopped
  scratch_reserve:
    description:
      - Free space kept on the file systems of the data directory and C(pg_wal) (its symlink followed) of the clusters of
        this host when O(scratch_base_dir) shares one with them; a restore elsewhere that would leave less (backup size
        plus WAL) is refused before anything is restored.
      - C(auto) (default) is the larger of 10% of that file system and 1 GiB; or a percentage (C(20%)) or a size
        (C(5G)); C(0) turns it off.
    type: str
    default: auto
  state:
    description:
      - C(restored) performs the restore. C(absent) stops and deletes the scratch instance O(scratch_name) (only what
        this module created; it refuses directories without its marker file).
    type: str
    choices: [restored, absent]
    default: restored
  plan_only:
    description: Run preflight and return the plan, like check mode, but write the audit record (status C(planned) or C(refused)).
    type: bool
    default: false
  requested_by:
    description: Who asked for the restore, for the audit record. The sudo user or login name when omitted.
    type: str
  reason:
    description: Why (incident, ticket), for the audit record.
    type: str
  record_dir:
    description: Directory of the job records; audit records go to its C(pitr-audit) subdirectory.
    type: path
    default: /var/lib/pgops-backup/records
  registry_dir:
    description: Registry of restore points written by M(pgops.backup.pg_restore_point), used to locate C(name) targets.
    type: path
    default: /var/lib/pgops-backup/restore-points
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Runs as root (C(become)); pgBackRest, psql and pg_ctl run as O(run_as), systemctl as root.
  - Debian/Ubuntu layout (postgresql-common, C(postgresql@VERSION-NAME.service), binaries in C(/usr/lib/postgresql/VERSION/bin)).
  - Clusters with tablespaces are restored in place only with O(delta=true) (or elsewhere).
seealso:
  - module: pgops.backup.pg_restore_point
  - module: pgops.backup.pgbackrest_backup
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Show what a recovery to 14:29:59 would do (changes nothing)
  pgops.backup.pitr_restore:
    stanza: main
    target_type: time
    target: "2026-05-02 14:29:59+02"
  check_mode: true
  register: plan

- name: Recover the cluster to 14:29:59, keeping the current data directory aside
  pgops.backup.pitr_restore:
    stanza: main
    target_type: time
    target: "2026-05-02 14:29:59+02"
    stop_cluster: true
    reason: INC-4711 accidental DELETE
  register: pitr

- name: Recover to the restore point taken before the migration
  pgops.backup.pitr_restore:
    stanza: main
    target_type: name
    target: before_migration
    stop_cluster: true

- name: Inspect the state just before transaction 48151 in a scratch instance (production untouched)
  pgops.backup.pitr_restore:
    stanza: main
    target_type: xid
    target: "48151"
    inclusive: false
    action: pause
    destination: elsewhere
    scratch_name: forensics

- name: Remove the scratch instance afterwards
  pgops.backup.pitr_restore:
    stanza: main
    target_type: latest
    destination: elsewhere
    scratch_name: forensics
    state: absent

- name: Rebuild a standby from the repository
  pgops.backup.pitr_restore:
    stanza: main
    target_type: standby
    delta: true
    stop_cluster: true
    primary_conninfo: "host=db1.example.com user=replicator application_name={{ inventory_hostname }}"
'''

RETURN = r'''
status:
  description: C(ok), or C(planned) in check mode and with O(plan_only). Failures also return C(refused) (nothing changed) or C(failed).
  returned: always
  type: str
  sample: ok
plan:
  description: Result of preflight.
  returned: always (also on failure, when preflight got far enough)
  type: dict
  contains:
    target:
      description: The target as understood (type, value, inclusive, action, description).
      type: dict
    backup_set:
      description: The chosen backup set (label, type, start, stop, lsn_start, lsn_stop, wal_start, size, reason).
      type: dict
    window:
      description: The recoverable window (from_time, from_lsn, from_backup, to_segment, to_time, to_lsn).
      type: dict
    position:
      description: Where the target was found (source C(target), C(registry) or C(wal-scan); lsn, time, segment).
      type: dict
    data_directory:
      description: How the data directory is handled (mode C(move_aside), C(delta), C(fresh) or C(scratch); path, aside_path, free space).
      type: dict
    wal_switch:
      description: Whether a WAL switch on the running cluster is needed first, and why.
      type: dict
    restore_command:
      description: The pgBackRest restore command line.
      type: list
      elements: str
    checks:
      description: Each preflight check with its detail.
      type: list
      elements: dict
    warnings:
      description: Conditions worth reading (for example failing archiving).
      type: list
      elements: str
    steps:
      description: What the run does, in order, in words.
      type: list
      elements: str
  sample:
    target: {type: time, value: "2026-11-21 09:29:42.318497+00", inclusive: true, action: promote}
    backup_set: {label: 20261121-092940F, type: full, stop: "2026-11-21T09:29:41.000000Z", lsn_stop: 0/A000120}
    window: {from_time: "2026-11-21T09:20:09.000000Z", to_time: "2026-11-21T09:29:48.122247Z", to_segment: 00000002000000000000000B}
backup_set:
  description: Label of the restored backup set.
  returned: success, not in check mode
  type: str
  sample: 20261121-092940F
data_directory:
  description: Data directory of the restored cluster (in place).
  returned: success, in place
  type: str
  sample: /var/lib/postgresql/17/main
moved_aside_to:
  description: Where the previous data directory was moved; null when delta was used or there was none.
  returned: success, in place
  type: str
  sample: /var/lib/postgresql/17/main.pitr-20261121T092954Z
timeline:
  description: Timeline of the server after recovery (the new one after promotion).
  returned: success, not in check mode
  type: int
  sample: 3
recovered_to:
  description: Commit time of the last transaction replayed (pg_last_xact_replay_timestamp), UTC.
  returned: success, not in check mode
  type: str
  sample: "2026-11-21T09:29:42.285200Z"
recovery_end_lsn:
  description: Last WAL location replayed.
  returned: success, not in check mode
  type: str
  sample: 0/B0093D8
promoted:
  description: Whether the server left recovery.
  returned: success, not in check mode
  type: bool
writable_at:
  description: When the promoted server accepted writes, UTC.
  returned: success, when promoted
  type: str
verification:
  description: How the target was proven (verified, evidence, problems, method).
  returned: success, for targets with a stop point
  type: dict
  sample: {verified: true, method: log+sql, evidence: ["stopped before transaction 772 committed at 2026-11-21T09:29:43.361020Z, after the target"]}
durations:
  description: Seconds per phase (preflight, wal_switch, stop, move_aside, restore, recovery, consistent_after, verify, promote, total).
  returned: success, not in check mode
  type: dict
  sample: {preflight: 0.23, stop: 0.17, move_aside: 0.01, restore: 0.57, recovery: 1.01, promote: 0.57, total: 3.09}
standby:
  description: For standby rebuilds, C(status) C(streaming) or C(replaying).
  returned: success, target_type=standby
  type: dict
scratch:
  description:
    - The scratch instance (name, port, socket_directory, data_directory, log_file, psql, start and stop commands, state).
    - C(next) says, in one sentence, how to reach it (running) or start it (stopped), stop it and remove it.
  returned: success, destination=elsewhere
  type: dict
archive_mode:
  description: archive_mode reported by the scratch instance (always off).
  returned: success, destination=elsewhere
  type: str
reset_settings:
  description: Recovery target settings removed from postgresql.auto.conf after promotion.
  returned: success, in place, when promoted
  type: list
  elements: str
interrupted_runs:
  description: Earlier in-place runs on this cluster that were killed before they finished, with where the data
    directory went (moved_aside_to), their stage and record. Also in the plan.
  returned: when there were any
  type: list
  elements: dict
stale_lock:
  description: The holder named by a lock that a killed run left behind (cleared by this run).
  returned: when there was one
  type: dict
archiving_disabled:
  description: True when O(allow_standby) recovered a cluster that is not the primary of the stanza, with C(archive_mode=off).
  returned: when true
  type: bool
record:
  description: Path of the audit record.
  returned: when not in check mode
  type: str
commands:
  description: Command lines that were executed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.cluster_lock import DEFAULT_LOCK_DIR
from ansible_collections.pgops.backup.plugins.module_utils.module_support import (
    fail_from, module_pgbackrest, pgbackrest_common_argument_spec)
from ansible_collections.pgops.backup.plugins.module_utils.pitr import ACTIONS, TARGET_TYPES, Target
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.recovery import DESTINATIONS, SCRATCH_STATES, Pitr, Request
from ansible_collections.pgops.backup.plugins.module_utils.records import DEFAULT_RECORD_DIR
from ansible_collections.pgops.backup.plugins.module_utils.restore_point import DEFAULT_REGISTRY_DIR
from ansible_collections.pgops.backup.plugins.module_utils.scratch import DEFAULT_BASE_DIR


def main():
    argument_spec = pgbackrest_common_argument_spec()
    argument_spec.update(
        stanza=dict(type='str', required=True),
        target_type=dict(type='str', required=True, choices=list(TARGET_TYPES)),
        target=dict(type='str'),
        inclusive=dict(type='bool', default=True),
        action=dict(type='str', default='promote', choices=list(ACTIONS)),
        timeline=dict(type='str'),
        backup_set=dict(type='str'),
        repo=dict(type='int'),
        destination=dict(type='str', default='in_place', choices=list(DESTINATIONS)),
        pg_version=dict(type='str'),
        pg_cluster=dict(type='str', default='main'),
        stop_cluster=dict(type='bool', default=False),
        delta=dict(type='bool', default=False),
        switch_wal=dict(type='bool', default=True),
        wal_scan_segments=dict(type='int', default=256),
        timeout=dict(type='int', default=3600),
        primary_conninfo=dict(type='str', no_log=True),
        allow_standby=dict(type='bool', default=False),
        force_rebuild=dict(type='bool', default=False),
        lock_dir=dict(type='path', default=DEFAULT_LOCK_DIR),
        scratch_name=dict(type='str', default='pitr'),
        scratch_port=dict(type='int'),
        scratch_base_dir=dict(type='path', default=DEFAULT_BASE_DIR),
        scratch_state=dict(type='str', default='stopped', choices=list(SCRATCH_STATES)),
        scratch_reserve=dict(type='str', default='auto'),
        state=dict(type='str', default='restored', choices=['restored', 'absent']),
        plan_only=dict(type='bool', default=False),
        requested_by=dict(type='str'),
        reason=dict(type='str'),
        record_dir=dict(type='path', default=DEFAULT_RECORD_DIR),
        registry_dir=dict(type='path', default=DEFAULT_REGISTRY_DIR),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    pgbr = module_pgbackrest(module, stanza=p['stanza'])
    pitr = Pitr(pgbr, pg_version=p['pg_version'], pg_cluster=p['pg_cluster'], record_dir=p['record_dir'],
                registry_dir=p['registry_dir'], lock_dir=p['lock_dir'])
    try:
        if p['state'] == 'absent':
            if p['destination'] != 'elsewhere':
                raise EngineError('state=absent removes a scratch instance: set destination=elsewhere')
            result = pitr.remove_scratch(p['scratch_name'], p['scratch_base_dir'], check_mode=module.check_mode)
            module.exit_json(status='absent', commands=pgbr.runner.commands, **result)
        target = Target(p['target_type'], p['target'], inclusive=p['inclusive'], action=p['action'],
                        timeline=p['timeline'])
        request = Request(target, destination=p['destination'], backup_set=p['backup_set'], repo=p['repo'],
                          stop_cluster=p['stop_cluster'], delta=p['delta'], switch_wal=p['switch_wal'],
                          wal_scan_segments=p['wal_scan_segments'], timeout=p['timeout'],
                          primary_conninfo=p['primary_conninfo'], scratch_name=p['scratch_name'],
                          scratch_port=p['scratch_port'], scratch_base_dir=p['scratch_base_dir'],
                          scratch_state=p['scratch_state'], requested_by=p['requested_by'], reason=p['reason'],
                          allow_standby=p['allow_standby'], force_rebuild=p['force_rebuild'],
                          scratch_reserve=p['scratch_reserve'])
        result = pitr.run(request, check_mode=module.check_mode, plan_only=p['plan_only'])
    except EngineError as exc:
        fail_from(module, exc, pgbr.runner, status=getattr(exc, 'status', 'failed'), plan=getattr(exc, 'plan', None),
                  record=getattr(exc, 'record', None))
    module.exit_json(commands=pgbr.runner.commands, **result)


if __name__ == '__main__':
    main()
