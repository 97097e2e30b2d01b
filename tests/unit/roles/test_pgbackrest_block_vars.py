# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgbackrest_block_incremental: block incremental + bundling in every repository where the detected
pgBackRest has it (2.46+), file-level before; the option-name check runs before the version is known."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.tests.unit.roles.pgbackrest_role_vars import render

REPOS = [{'path': '/var/lib/pgbackrest'}, {'path': '/srv/repo2'}]


def block_options(version, setting='auto'):
    options = render('__pgbackrest_repo_options', pgbackrest_repositories=REPOS, pgbackrest_block_incremental=setting,
                     __pgbackrest_info={'version': version})
    return dict((k, v) for k, v in options.items() if k.endswith(('-block', '-bundle')))


@pytest.mark.parametrize('version', ['2.46', '2.50', '2.55.1'])
def test_auto_turns_block_and_bundle_on_from_2_46(version):
    assert block_options(version) == {'repo1-block': True, 'repo1-bundle': True, 'repo2-block': True, 'repo2-bundle': True}


def test_auto_keeps_file_level_incrementals_on_2_45():
    assert block_options('2.45') == {}


def test_disabled_keeps_file_level_everywhere():
    assert block_options('2.55.1', 'disabled') == {}


def test_before_the_version_is_known_the_options_leave_block_out():
    options = render('__pgbackrest_repo_options', undefined=['__pgbackrest_info'], pgbackrest_block_incremental='auto')
    assert not any(k.endswith(('-block', '-bundle')) for k in options)
