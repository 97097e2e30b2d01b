# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named restore points: created once per timeline, archived at once, recorded in the registry."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.postgres import Psql
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils.restore_point import create_restore_point, load
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import SYSTEM_ID, PitrHost


def create(tmp_path, host=None, **kwargs):
    host = host or PitrHost()
    runner = host.runner()
    lines = []
    result = create_restore_point(Psql(runner, port=5432), kwargs.pop('name', 'before_migration'),
                                  str(tmp_path / 'points'), pgbr=PgBackRest(runner, stanza='main'),
                                  journal=lines.append, **kwargs)
    return result, host, lines


def test_created_archived_and_recorded(tmp_path):
    result, host, lines = create(tmp_path, requested_by='alice', reason='CHG-1')
    assert result['changed'] and not result['existing']
    point = result['restore_point']
    assert (point['lsn'], point['wal_file'], point['timeline'], point['system_identifier']) == (
        '0/D018E60', '00000004000000000000000D', 4, SYSTEM_ID)
    assert point['archived'] is True and point['requested_by'] == 'alice'
    sql = [c['argv'][c['argv'].index('-c') + 1] for c in host.ran('pg_create_restore_point')]
    assert "pg_create_restore_point('before_migration')" in sql[0]
    # pgbackrest check switches WAL and waits until the segment with the point is archived.
    assert host.commands().index(next(c for c in host.commands() if 'pg_create_restore_point' in c)) < \
        host.commands().index(next(c for c in host.commands() if c.endswith(' check')))
    assert load(str(tmp_path / 'points'), 'before_migration')['lsn'] == '0/D018E60'
    assert lines == ['restore point before_migration created at LSN 0/D018E60 (2026-11-21T09:31:32.214960Z, '
                     'timeline 4), archived']


def test_same_name_on_the_same_timeline_changes_nothing(tmp_path):
    create(tmp_path)
    result, host, lines = create(tmp_path)
    assert not result['changed'] and result['existing']
    assert not host.ran('pg_create_restore_point') and not host.ran(' check') and lines == []


def test_same_name_after_a_recovery_to_another_timeline_is_created_again(tmp_path):
    (tmp_path / 'points').mkdir()
    (tmp_path / 'points' / 'before_migration.json').write_text(json.dumps(
        {'name': 'before_migration', 'lsn': '0/3000000', 'timeline': 2, 'system_identifier': SYSTEM_ID}))
    result, host, lines = create(tmp_path)
    assert result['changed'] and result['restore_point']['timeline'] == 4


def test_check_mode_creates_nothing(tmp_path):
    result, host, lines = create(tmp_path, check_mode=True)
    assert result['changed'] and not host.ran('pg_create_restore_point')
    assert not (tmp_path / 'points').exists()


def test_refused_on_a_standby(tmp_path):
    host = PitrHost()
    host.in_recovery = True
    with pytest.raises(EngineError) as caught:
        create(tmp_path, host)
    assert 'in recovery' in caught.value.msg


@pytest.mark.parametrize('name', ["x'y", 'a b', '', '-leading', 'x' * 64])
def test_unusable_names_are_refused_before_anything_runs(tmp_path, name):
    host = PitrHost()
    with pytest.raises(EngineError):
        create(tmp_path, host, name=name)
    assert host.calls == []
