# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ensure_stanza: what runs for each state, and that a second run changes nothing."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.plugins.module_utils.stanza import ensure_stanza
from ansible_collections.pgops.backup.tests.unit.fakes import PGBACKREST, fixture, info_text, info_doc, pgbackrest_fake

OK = fixture('info-ok-2.55.1.json')
NOBACKUP = fixture('info-nobackup-2.55.1.json')


def missing(name='main'):
    doc = info_doc('info-missing-2.55.1.json')
    doc[0]['name'] = name
    return info_text(doc)


def make(fake):
    return PgBackRest(Runner(run=fake, which=fake.which, run_as=None), stanza='main')


def test_present_creates_a_missing_stanza():
    fake = pgbackrest_fake(info=[missing(), NOBACKUP]).on('stanza-create')
    out = ensure_stanza(make(fake), 'present')
    assert fake.pgbackrest_commands() == ['info', 'stanza-create', 'info']
    assert [PGBACKREST, '--stanza=main', 'stanza-create'] in fake.argvs
    assert out['changed'] is True and out['actions'] == ['stanza-create']
    assert out['before']['exists'] is False and out['after']['exists'] is True
    assert out['stanza'] == 'main' and out['check'] is None


def test_second_present_is_a_no_op():
    fake = pgbackrest_fake(info=[missing(), NOBACKUP]).on('stanza-create')
    pgbr = make(fake)
    first = ensure_stanza(pgbr, 'present')
    second = ensure_stanza(pgbr, 'present')
    assert first['changed'] is True
    assert second['changed'] is False and second['actions'] == []
    assert second['before'] == second['after']
    assert fake.pgbackrest_commands().count('stanza-create') == 1


def test_present_on_existing_stanza_only_reads_info():
    fake = pgbackrest_fake(info=OK)
    out = ensure_stanza(make(fake), 'present')
    assert out['changed'] is False
    assert fake.pgbackrest_commands() == ['info']


def test_present_creates_the_stanza_in_a_new_repository():
    # repo1 holds the stanza, repo2 was just added: pgBackRest reports "different across repos".
    fake = pgbackrest_fake(info=[fixture('info-mixed-2.55.1.json'), OK]).on('stanza-create')
    out = ensure_stanza(make(fake), 'present')
    assert out['changed'] is True and out['actions'] == ['stanza-create']
    assert fake.pgbackrest_commands() == ['info', 'stanza-create', 'info']


def test_present_with_check():
    fake = pgbackrest_fake(info=OK).on('check', out='')
    out = ensure_stanza(make(fake), 'present', check=True)
    assert fake.pgbackrest_commands() == ['info', 'check']
    assert out['check']['ok'] is True and isinstance(out['check']['seconds'], float)
    assert out['changed'] is False


def test_failing_check_raises_with_the_pgbackrest_code():
    fake = pgbackrest_fake(info=OK).on('check', rc=37, err=fixture('check-missing-2.45.err'))
    with pytest.raises(EngineError) as caught:
        ensure_stanza(make(fake), 'present', check=True)
    assert caught.value.code == 37


def test_check_mode_runs_nothing_that_changes():
    fake = pgbackrest_fake(info=missing())
    out = ensure_stanza(make(fake), 'present', check=True, check_mode=True)
    assert fake.pgbackrest_commands() == ['info']
    assert out['changed'] is True
    assert out['actions'] == ['stanza-create', 'check (skipped in check mode: it switches WAL)']
    assert out['after'] is out['before'] and out['check'] is None


@pytest.mark.parametrize('version', ['2.45', '2.55.1'])
def test_upgraded_already_up_to_date(version):
    fake = pgbackrest_fake(version, info=fixture('info-ok-%s.json' % version))
    fake.on('stanza-upgrade', out=fixture('stanza-upgrade-uptodate-%s.out' % version))
    out = ensure_stanza(make(fake), 'upgraded')
    assert out['changed'] is False and out['actions'] == []
    assert [PGBACKREST, '--stanza=main', '--log-level-console=info', 'stanza-upgrade'] in fake.argvs
    assert fake.pgbackrest_commands() == ['info', 'stanza-upgrade']


def test_upgraded_when_pgbackrest_upgrades():
    upgraded = ''.join(line for line in fixture('stanza-upgrade-uptodate-2.55.1.out').splitlines(True)
                       if 'already up to date' not in line)
    fake = pgbackrest_fake(info=OK).on('stanza-upgrade', out=upgraded)
    out = ensure_stanza(make(fake), 'upgraded')
    assert out['changed'] is True and out['actions'] == ['stanza-upgrade']
    assert fake.pgbackrest_commands() == ['info', 'stanza-upgrade', 'info']


def test_upgraded_refused_for_a_missing_stanza():
    fake = pgbackrest_fake(info=missing())
    with pytest.raises(EngineError) as caught:
        ensure_stanza(make(fake), 'upgraded')
    assert caught.value.msg == "stanza 'main' does not exist, so it cannot be upgraded"
    assert caught.value.hint == 'create it with state=present'
    assert fake.pgbackrest_commands() == ['info']


def test_upgraded_in_check_mode():
    fake = pgbackrest_fake(info=OK)
    out = ensure_stanza(make(fake), 'upgraded', check_mode=True)
    assert out['actions'] == ['stanza-upgrade (if the cluster changed)'] and out['changed'] is False
    assert fake.pgbackrest_commands() == ['info']


def test_absent_refused_without_force():
    fake = pgbackrest_fake(info=OK)
    with pytest.raises(EngineError) as caught:
        ensure_stanza(make(fake), 'absent')
    assert caught.value.msg == "refusing to delete stanza 'main': it holds 1 backup(s) and the WAL archive"
    assert 'force=true' in caught.value.hint
    assert fake.pgbackrest_commands() == ['info']


def test_absent_with_force_stops_deletes_and_starts():
    fake = pgbackrest_fake(info=[OK, missing()]).on('stop').on('stanza-delete').on('start')
    out = ensure_stanza(make(fake), 'absent', force=True)
    assert fake.pgbackrest_commands() == ['info', 'stop', 'stanza-delete', 'start', 'info']
    assert fake.argvs[2] == [PGBACKREST, '--stanza=main', '--force', 'stanza-delete']
    assert out['changed'] is True and out['actions'] == ['stop', 'stanza-delete', 'start']
    assert out['before']['backup_count'] == 1 and out['after']['exists'] is False


def test_absent_with_force_in_check_mode():
    fake = pgbackrest_fake(info=OK)
    out = ensure_stanza(make(fake), 'absent', force=True, check_mode=True)
    assert fake.pgbackrest_commands() == ['info']
    assert out['changed'] is True and out['actions'] == ['stop', 'stanza-delete', 'start']
    assert out['after'] is None


def test_absent_when_already_gone():
    fake = pgbackrest_fake(info=missing())
    out = ensure_stanza(make(fake), 'absent')
    assert out['changed'] is False and out['actions'] == []
    assert fake.pgbackrest_commands() == ['info']


@pytest.mark.parametrize('name', ['main', 'db1-prod', 'pg_17.main', '_x', '17', 'a' * 64])
def test_stanza_names_pgbackrest_takes(name):
    from ansible_collections.pgops.backup.plugins.module_utils.stanza import validate_stanza_name
    assert validate_stanza_name(name) == name


@pytest.mark.parametrize('name', ["ma'in", 'ma"in', 'main db', '-main', '.main', 'a/b', '[main]', 'ma..in', '',
                                  'main;rm', 'ma\nin', 'a' * 65, 'mä in', 'main$x'])
def test_stanza_names_refused_before_anything_runs(name):
    from ansible_collections.pgops.backup.plugins.module_utils.stanza import validate_stanza_name
    with pytest.raises(EngineError) as err:
        validate_stanza_name(name)
    assert err.value.code == 'stanza-name'
    assert repr(name) in err.value.msg and 'rename the stanza' in err.value.hint
