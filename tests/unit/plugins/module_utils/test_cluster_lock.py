# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One lock per cluster: a second job is refused naming the first; a crashed holder never blocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cluster_lock
from ansible_collections.pgops.backup.plugins.module_utils.cluster_lock import ClusterBusy, ClusterLock, lock_path


def test_lock_path_is_one_safe_file_per_cluster(tmp_path):
    assert lock_path('17/main', str(tmp_path)) == str(tmp_path / 'cluster-17-main.lock')
    assert lock_path('../../etc', str(tmp_path)) == str(tmp_path / 'cluster-etc.lock')


def test_second_job_is_refused_naming_the_first(tmp_path, monkeypatch):
    monkeypatch.setenv('SUDO_USER', 'alice')
    with ClusterLock('17/main', job='pitr', lock_dir=str(tmp_path)):
        with pytest.raises(ClusterBusy) as refused:
            ClusterLock('17/main', job='standby-rebuild', lock_dir=str(tmp_path)).acquire()
    msg = refused.value.msg
    assert 'cluster 17/main is busy: pitr (pid %d' % os.getpid() in msg
    assert 'by alice' in msg and 'refusing to start standby-rebuild' in msg
    assert refused.value.code == 'locked'


def test_other_clusters_are_independent(tmp_path):
    with ClusterLock('17/main', job='pitr', lock_dir=str(tmp_path)):
        with ClusterLock('17/replica', job='pitr', lock_dir=str(tmp_path)) as other:
            assert other.stale is None


def test_released_lock_is_free_and_not_stale(tmp_path):
    ClusterLock('17/main', job='pitr', lock_dir=str(tmp_path)).acquire().release()
    with ClusterLock('17/main', job='drill', lock_dir=str(tmp_path)) as lock:
        assert lock.stale is None
        holder = json.loads((tmp_path / 'cluster-17-main.lock').read_text())
        assert holder['job'] == 'drill' and holder['pid'] == os.getpid()


def test_lock_of_a_killed_holder_is_cleared_and_reported(tmp_path):
    # A real process takes the lock and dies without releasing it, as after kill -9.
    code = ('import sys; sys.path[:0] = %r\n'
            'from ansible_collections.pgops.backup.plugins.module_utils.cluster_lock import ClusterLock\n'
            'import os; ClusterLock("17/main", job="pitr", lock_dir=%r).acquire(); os._exit(9)\n') % (
                sys.path, str(tmp_path))
    child = subprocess.run([sys.executable, '-c', code], check=False)
    assert child.returncode == 9
    dead = json.loads((tmp_path / 'cluster-17-main.lock').read_text())['pid']
    with ClusterLock('17/main', job='pitr', lock_dir=str(tmp_path)) as lock:
        assert lock.stale['pid'] == dead and lock.stale['job'] == 'pitr'
        assert lock.stale['alive'] is False


def test_holder_details_are_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_lock.clock, 'now', lambda: 1795000000.0)
    with ClusterLock('15/main', job='dump-restore', lock_dir=str(tmp_path), details={'database': 'app'}):
        holder = cluster_lock.read_holder(lock_path('15/main', str(tmp_path)))
    assert holder['database'] == 'app'
    assert holder['started_at'] == '2026-11-18T11:06:40Z'


def test_a_lock_directory_that_cannot_be_made_is_an_engine_error_for_every_door(tmp_path):
    # In-place PITR and standby rebuild (recovery.py) catch only ClusterBusy: an OSError would be a traceback.
    (tmp_path / 'not-a-dir').write_text('')
    lock_dir = str(tmp_path / 'not-a-dir' / 'locks')
    with pytest.raises(cluster_lock.EngineError) as err:
        ClusterLock('17/main', job='pitr', lock_dir=lock_dir).acquire()
    assert err.value.msg.startswith('cannot take the lock of cluster 17/main in %s: ' % lock_dir)
    assert 'install -d -o postgres -g postgres -m 0770 %s' % lock_dir in err.value.hint
    assert 'nothing was changed' in err.value.hint


def test_a_lock_whose_holder_cannot_be_written_is_released_and_refused(tmp_path, monkeypatch):
    def full(fd, holder):
        raise OSError(28, 'No space left on device')
    with monkeypatch.context() as patched:
        patched.setattr(ClusterLock, '_write', staticmethod(full))
        with pytest.raises(cluster_lock.EngineError) as err:
            ClusterLock('17/main', job='pitr', lock_dir=str(tmp_path)).acquire()
    assert 'cannot write the cluster lock' in err.value.msg and 'No space left' in err.value.msg
    with ClusterLock('17/main', job='pitr', lock_dir=str(tmp_path)) as again:
        assert again.path.endswith('cluster-17-main.lock')
