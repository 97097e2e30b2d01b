# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the `pgops-backup` host command tests: cli builds its Runner itself; `use` gives that
Runner the fake process boundary and keeps the rest of it real."""

from __future__ import annotations

import functools

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli
from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner


@pytest.fixture
def use(monkeypatch):
    # Not root unless a test says so (as under systemd: User=postgres): the run-as rule depends on it,
    # and these tests must not depend on who runs them.
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)

    def _use(fake):
        monkeypatch.setattr(cli, 'Runner', functools.partial(Runner, run=fake, which=fake.which))
        return fake
    return _use
