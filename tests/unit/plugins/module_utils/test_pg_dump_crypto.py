# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decrypted files and gpg homes left by a killed run (SIGKILL: no cleanup) are removed by the next run."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_crypto
from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest as layout
from ansible_collections.pgops.backup.plugins.module_utils import pg_dump as engine
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as fakes

DEAD = 4194000  # above any pid_max a test host uses: no such process


@pytest.fixture
def host_name(monkeypatch):
    monkeypatch.setattr(socket, 'gethostname', lambda: 'db1.example')
    return 'db1.example'


def _leftover(parent, name):
    path = parent / name
    path.mkdir(mode=0o700)
    (path / 'appdb.dump').write_bytes(b'decrypted rows')
    return path


def test_a_work_dir_is_private_and_named_by_host_and_pid(tmp_path, host_name):
    calls = []
    path = dump_crypto.decrypt_work_dir(str(tmp_path), chown=calls.append)
    assert os.path.basename(path) == '.restore-db1.example-%d' % os.getpid()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700 and calls == [path]
    assert os.path.basename(path).startswith(layout.RESTORE_PREFIX)


def test_decrypted_files_of_a_killed_run_are_removed_by_the_next(tmp_path, host_name):
    killed = _leftover(tmp_path, '.restore-db1.example-%d' % DEAD)
    alive = _leftover(tmp_path, '.restore-db1.example-%d' % os.getppid())   # a running restore
    other_host = _leftover(tmp_path, '.restore-db2.example-%d' % DEAD)      # shared storage: not ours
    not_ours = _leftover(tmp_path, '.restore-manual')
    said = []
    path = dump_crypto.decrypt_work_dir(str(tmp_path), say=said.append)
    assert not killed.exists()
    assert alive.exists() and other_host.exists() and not_ours.exists() and os.path.isdir(path)
    assert said == ['removing decrypted files left by an interrupted run: %s' % killed]


def test_gpg_homes_of_killed_runs_are_removed_and_their_agent_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(dump_crypto.tempfile, 'gettempdir', lambda: str(tmp_path))
    stale = tmp_path / ('pgops-gnupg-%d-1' % DEAD)
    stale.mkdir()
    (stale / 'S.gpg-agent').write_text('')
    running = tmp_path / ('pgops-gnupg-%d-1' % os.getppid())
    running.mkdir()
    host = fakes.FakeHost()
    with dump_crypto.Gpg(host.runner(), 'a-good-passphrase-0123456789') as gpg:
        assert os.path.dirname(gpg.homedir) == str(tmp_path)
        assert os.path.basename(gpg.homedir).startswith('pgops-gnupg-%d-' % os.getpid())
        assert stat.S_IMODE(os.stat(gpg.homedir).st_mode) == 0o700
        home = gpg.homedir
    assert not stale.exists() and running.exists() and not os.path.exists(home)
    killed = [a for a in host.argvs('gpgconf') if str(stale) in a]
    assert killed == [['/usr/bin/gpgconf', '--homedir', str(stale), '--kill', 'gpg-agent']]


def test_the_next_dump_run_removes_decrypted_files_of_a_killed_restore(tmp_path, host_name):
    host = fakes.FakeHost()
    db_dir = tmp_path / 'dumps' / 'appdb'
    db_dir.mkdir(parents=True, mode=0o700)
    killed = _leftover(db_dir, '.restore-db1.example-%d' % DEAD)
    job = engine.DumpJob(host.runner(), str(tmp_path / 'dumps'), sessions=fakes.Sessions(), owner=fakes.no_owner,
                         clock=fakes.Clock(), host='db1.example', job='nightly')
    result = job.run()
    assert result['failed'] == [] and not killed.exists()
