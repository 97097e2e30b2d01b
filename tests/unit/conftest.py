# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make `ansible_collections.pgops.backup` importable for the unit tests.

The project keeps the collection at <root>/.cache/collections/ansible_collections/pgops/backup
(a symlink to the repository), so that directory goes first on sys.path. Under ansible-test the
collection is already importable and the path simply does not exist.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')

if os.path.isdir(COLLECTIONS) and COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


# Every test starts at the same instant, whatever the day: the engine reads the wall clock only
# through module_utils.clock. 2026-11-21T10:00:00Z is just after the fixtures' newest backup.
# The clock still advances with real time, so that timeouts measured with it expire.
FROZEN_NOW = 1795255200.0


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    from ansible_collections.pgops.backup.plugins.module_utils import clock
    started = time.monotonic()
    monkeypatch.setattr(clock, 'now', lambda: FROZEN_NOW + (time.monotonic() - started))
    return FROZEN_NOW


# Cluster locks (module_utils.cluster_lock) live in /run on a host; in the tests, in a private
# directory per test. Code that takes a lock reads cluster_lock.DEFAULT_LOCK_DIR when it runs.
@pytest.fixture(autouse=True)
def private_lock_dir(monkeypatch, tmp_path_factory):
    from ansible_collections.pgops.backup.plugins.module_utils import cluster_lock
    path = str(tmp_path_factory.mktemp('locks'))
    monkeypatch.setattr(cluster_lock, 'DEFAULT_LOCK_DIR', path)
    return path
