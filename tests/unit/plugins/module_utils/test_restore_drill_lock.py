# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore drill takes the lock of its production cluster even when pg_version (the scratch
instance's version) is not production's, or two versions of the cluster name exist on the host
(a pg_upgradecluster leftover): a drill never runs during a recovery of the production cluster."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cluster_lock
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill import Drill, Settings
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import restore_drill_fakes as fakes


def drill(host, tmp_path, **settings):
    values = dict(source='pgbackrest', stanza='main')
    values.update(settings)
    clock = fakes.Clock()
    return Drill(host.runner(), Settings(**values), record_dir=str(tmp_path / 'records'), clock=clock,
                 sleep=clock.sleep, hostname='db1.example.com')


def refused_while_pitr_holds_17_main(host, tmp_path, **settings):
    with cluster_lock.ClusterLock('17/main', job='pitr', lock_dir=cluster_lock.DEFAULT_LOCK_DIR):
        with pytest.raises(cluster_lock.ClusterBusy) as err:
            drill(host, tmp_path, **settings).run()
    assert 'cluster 17/main is busy: pitr (pid %d' % os.getpid() in err.value.msg
    assert fakes.mutating(host) == []


def test_a_scratch_version_other_than_production_s_still_takes_the_production_lock(tmp_path):
    refused_while_pitr_holds_17_main(fakes.DrillHost(), tmp_path, pg_version='18')


def with_a_16_main_leftover(host):
    """pg_lsclusters lists a stopped 16/main (a pg_upgradecluster leftover) before the host's 17/main."""
    real = host._pg_lsclusters

    def two(argv, data):
        rc, out, err = real(argv, data)
        return rc, '16 main 5433 down postgres /var/lib/postgresql/16/main /var/log/postgresql/x.log\n' + out, err
    host._pg_lsclusters = two
    return host


def test_two_versions_of_the_cluster_name_are_both_locked(tmp_path):
    host = with_a_16_main_leftover(fakes.DrillHost())
    refused_while_pitr_holds_17_main(host, tmp_path)
    # The lock of 16/main taken before 17/main was found busy is released again.
    with cluster_lock.ClusterLock('16/main', job='pitr', lock_dir=cluster_lock.DEFAULT_LOCK_DIR) as lock:
        assert lock.cluster == '16/main'


def test_a_drill_refused_by_the_lock_leaves_a_skipped_record_saying_why(tmp_path):
    import json
    refused_while_pitr_holds_17_main(fakes.DrillHost(), tmp_path)
    records = sorted(n for n in os.listdir(str(tmp_path / 'records')) if n.endswith('.json'))
    assert records == ['restore_test-pgbackrest.json'], records
    with open(str(tmp_path / 'records' / records[0])) as handle:
        record = json.load(handle)
    assert record['status'] == 'skipped'
    assert record['reason'].startswith('cluster 17/main is busy: pitr (pid %d' % os.getpid())


def test_production_is_the_backed_up_version_not_the_scratch_version(tmp_path):
    # pg_version is the scratch instance's version: production stays 17/main, whose port is then avoided.
    plan = drill(fakes.DrillHost(), tmp_path, pg_version='18').plan()
    assert plan['production']['cluster'] == '17/main', plan['production']


def test_with_two_versions_of_the_name_production_is_the_one_the_stanza_backs_up(tmp_path):
    plan = drill(with_a_16_main_leftover(fakes.DrillHost()), tmp_path).plan()
    assert plan['production']['cluster'] == '17/main', plan['production']
