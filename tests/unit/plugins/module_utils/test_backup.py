# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_backup: the command line, and which backup it reports."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.backup import run_backup
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.fakes import (
    PGBACKREST, fixture, info_with_backups, pgbackrest_fake)

F1 = '20261121-091140F'
D1 = F1 + '_20261122-013002D'
CHAIN = 'info-chain-2.55.1.json'
OK = fixture('info-ok-2.55.1.json')
BACKUP_LOG = ("P00   INFO: backup command begin 2.55.1: --stanza=main --type=diff\n"
              "P00   INFO: backup start archive = 000000010000000000000006, lsn = 0/6000028\n"
              "P00   INFO: new backup label = %s\n"
              "P00   INFO: backup command end: completed successfully\n" % D1)


def make(fake, stream=None, config=None):
    return PgBackRest(Runner(run=fake, which=fake.which, run_as=None, stream=stream), stanza='main', config=config)


def test_new_backup_is_identified_by_label():
    fake = pgbackrest_fake(info=[OK, info_with_backups(CHAIN, [F1, D1])]).on('backup', out=BACKUP_LOG)
    out = run_backup(make(fake), 'diff', {'ticket': '42'})
    assert out['backup']['label'] == D1 and out['backup']['type'] == 'diff'
    assert out['backup']['prior'] == F1
    assert out['requested_type'] == 'diff'
    assert out['stanza']['backup_count'] == 2
    assert isinstance(out['seconds'], float) and out['seconds'] >= 0
    assert fake.pgbackrest_commands() == ['info', 'backup', 'info']


def test_command_line():
    fake = pgbackrest_fake(info=[OK, info_with_backups(CHAIN, [F1, D1])]).on('backup')
    run_backup(make(fake, config='/etc/pgbackrest/pgbackrest.conf'), 'diff',
               {'ticket': '42', 'reason': 'migration'}, repo=2, start_fast=False)
    assert fake.argvs[1] == [
        PGBACKREST, '--config=/etc/pgbackrest/pgbackrest.conf', '--stanza=main', '--log-level-console=info',
        '--type=diff', '--annotation=reason=migration', '--annotation=ticket=42', '--repo=2', '--no-start-fast',
        'backup']


def test_reports_the_type_pgbackrest_took():
    # No full backup yet: pgBackRest takes a full one when asked for an incr.
    fake = pgbackrest_fake(info=[fixture('info-nobackup-2.55.1.json'), OK]).on('backup')
    out = run_backup(make(fake), 'incr')
    assert out['requested_type'] == 'incr'
    assert out['backup']['type'] == 'full' and out['backup']['label'] == F1


def test_newest_of_several_new_backups():
    fake = pgbackrest_fake(info=[OK, fixture(CHAIN)]).on('backup')
    assert run_backup(make(fake), 'incr')['backup']['label'] == '20261129-010002F_20261129-023002I'


def test_error_when_no_new_backup_appears():
    fake = pgbackrest_fake(info=OK).on('backup')
    with pytest.raises(EngineError) as caught:
        run_backup(make(fake), 'full')
    assert caught.value.msg == 'pgbackrest backup exited 0 but no new backup appears in info'
    assert '`pgbackrest info --stanza=main`' in caught.value.hint


def test_stanza_not_created():
    doc = fixture('info-missing-2.55.1.json').replace('"name":"nope"', '"name":"main"')
    fake = pgbackrest_fake(info=doc)
    with pytest.raises(EngineError) as caught:
        run_backup(make(fake), 'full')
    assert caught.value.msg == "stanza 'main' has not been created in the repository"
    assert fake.pgbackrest_commands() == ['info']


def test_invalid_type_rejected_before_any_command():
    fake = pgbackrest_fake(info=OK)
    with pytest.raises(EngineError):
        run_backup(make(fake), 'bogus')
    assert fake.calls == []


def test_backup_failure_carries_the_pgbackrest_error():
    lock = ("P00  ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/main-backup.lock': "
            "Resource temporarily unavailable\n            HINT: is another pgBackRest process running?\n")
    fake = pgbackrest_fake(info=OK).on('backup', rc=50, out=lock)
    with pytest.raises(EngineError) as caught:
        run_backup(make(fake), 'incr')
    assert caught.value.code == 50 and caught.value.rc == 50
    assert fake.pgbackrest_commands() == ['info', 'backup']


def test_progress_is_streamed_for_the_backup_only():
    lines = []
    fake = pgbackrest_fake(info=[OK, info_with_backups(CHAIN, [F1, D1])]).on('backup', out=BACKUP_LOG)
    run_backup(make(fake, stream=lines.append), 'diff', stream=True)
    assert [c['stream'] for c in fake.calls] == [False, True, False]
    assert lines[2] == 'P00   INFO: new backup label = %s' % D1 and len(lines) == 4
