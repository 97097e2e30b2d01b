# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest command lines, version and option names (against the captured help output)."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import pgbackrest as pgbr_mod
from ansible_collections.pgops.backup.plugins.module_utils.backup import backup_options
from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import (
    PgBackRest, normalize_option, parse_command_names, parse_option_names, parse_version, unknown_options)
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.fakes import (
    PGBACKREST, FakeProcess, add_help, fixture, pgbackrest_fake)

CONF = '/etc/pgbackrest/pgbackrest.conf'
COMMANDS = ['annotate', 'archive-get', 'archive-push', 'backup', 'check', 'expire', 'info', 'repo-get',
            'repo-ls', 'restore', 'server', 'server-ping', 'stanza-create', 'stanza-delete', 'stanza-upgrade',
            'start', 'stop', 'verify', 'version']


def make(fake, stanza='main', config=None):
    return PgBackRest(Runner(run=fake, which=fake.which, run_as=None), stanza=stanza, config=config)


def test_options_come_before_the_command():
    pgbr = make(FakeProcess(), config=CONF)
    assert pgbr.argv('backup', '--type=full', '--start-fast') == [
        PGBACKREST, '--config=' + CONF, '--stanza=main', '--type=full', '--start-fast', 'backup']


@pytest.mark.parametrize('command', ['version', 'help'])
def test_no_stanza_for_version_and_help(command):
    assert make(FakeProcess(), config=CONF).argv(command) == [PGBACKREST, '--config=' + CONF, command]


def test_stanza_can_be_overridden_or_dropped():
    pgbr = make(FakeProcess())
    assert pgbr.argv('info', stanza='other') == [PGBACKREST, '--stanza=other', 'info']
    assert pgbr.argv('info', stanza=None) == [PGBACKREST, 'info']
    assert make(FakeProcess(), stanza=None).argv('info', '--output=json') == [PGBACKREST, '--output=json', 'info']


def test_binary_is_looked_up_once():
    fake = pgbackrest_fake(info=fixture('info-ok-2.55.1.json'))
    looked_up = []
    runner = Runner(run=fake, which=lambda name: looked_up.append(name) or '/opt/pgbackrest/bin/' + name)
    pgbr = PgBackRest(runner, stanza='main')
    pgbr.info()
    pgbr.info()
    assert looked_up == ['pgbackrest']
    assert fake.argvs[-1] == ['/opt/pgbackrest/bin/pgbackrest', '--stanza=main', '--output=json', 'info']


def test_missing_pgbackrest_names_the_package():
    fake = FakeProcess(missing=['pgbackrest'])
    with pytest.raises(EngineError) as caught:
        make(fake).version()
    assert caught.value.msg == "required program 'pgbackrest' was not found on this host"
    assert caught.value.hint == 'install the pgbackrest package'
    assert fake.calls == []


@pytest.mark.parametrize('version, parsed, text', [('2.45', (2, 45, 0), '2.45.0'),
                                                   ('2.55.1', (2, 55, 1), '2.55.1')])
def test_version_is_read_once(version, parsed, text):
    fake = pgbackrest_fake(version)
    pgbr = make(fake)
    assert pgbr.version() == parsed
    assert pgbr.version_string() == text
    assert fake.argvs == [[PGBACKREST, 'version']]


def test_unreadable_version():
    with pytest.raises(EngineError) as caught:
        parse_version('command not found\n')
    assert "'command not found'" in caught.value.msg


def test_info_command_line():
    fake = pgbackrest_fake(info=fixture('info-ok-2.55.1.json'))
    assert make(fake, config=CONF).info()[0]['name'] == 'main'
    assert fake.argvs == [[PGBACKREST, '--config=' + CONF, '--stanza=main', '--output=json', 'info']]


def test_stanza_info_of_a_stanza_not_reported():
    fake = pgbackrest_fake(info=fixture('info-missing-2.55.1.json'))
    with pytest.raises(EngineError) as caught:
        make(fake, stanza='main').stanza_info()
    assert caught.value.msg == "stanza 'main' is not defined in the pgBackRest configuration"
    assert '[main]' in caught.value.hint


def test_backup_options_in_order():
    assert backup_options('diff', {'ticket': '42', 'reason': 'migration'}, repo='2', start_fast=True) == [
        '--type=diff', '--annotation=reason=migration', '--annotation=ticket=42', '--repo=2', '--start-fast']


@pytest.mark.parametrize('start_fast, expected', [(True, ['--start-fast']), (False, ['--no-start-fast']), (None, [])])
def test_start_fast_is_tristate(start_fast, expected):
    assert backup_options('full', start_fast=start_fast) == ['--type=full'] + expected


def test_invalid_backup_type_rejected():
    with pytest.raises(EngineError) as caught:
        backup_options('bogus')
    assert caught.value.msg == "backup type must be one of full, diff, incr, not 'bogus'"


@pytest.mark.parametrize('name, normal', [('repo2-path', 'repo-path'), ('pg1-port', 'pg-port'),
                                          ('repo10-s3-bucket', 'repo-s3-bucket'), (' Repo1-Path ', 'repo-path'),
                                          ('process-max', 'process-max'), ('pg-version-force', 'pg-version-force')])
def test_normalize_option(name, normal):
    assert normalize_option(name) == normal


@pytest.mark.parametrize('version', ['2.45', '2.55.1'])
def test_command_names_from_help(version):
    assert parse_command_names(fixture('help-%s.out' % version)) == COMMANDS


@pytest.mark.parametrize('version, count', [('2.45', 108), ('2.55.1', 125)])
def test_option_names_from_backup_help(version, count):
    names = parse_option_names(fixture('help-backup-%s.out' % version))
    assert len(names) == count
    assert {'type', 'start-fast', 'annotation', 'repo-path', 'pg-port', 'compress-type', 'stanza'} <= names
    # The `backup command begin` log line above the help lists options too: not parsed as names.
    assert not any('=' in n for n in names)


def test_unknown_options_against_real_help():
    names_245 = parse_option_names(fixture('help-backup-2.45.out'))
    names_2551 = parse_option_names(fixture('help-backup-2.55.1.out'))
    wanted = ['repo2-path', 'pg1-port', 'compress-type', 'repo1-retention-full', 'repo2-sftp-host', 'compress-typ']
    assert unknown_options(wanted, names_245) == ['compress-typ', 'repo2-sftp-host']
    assert unknown_options(wanted, names_2551) == ['compress-typ']
    assert unknown_options([], names_2551) == []


def test_supported_options_reads_every_command_help():
    fake = add_help(FakeProcess(), '2.45')
    names = make(fake).supported_options()
    assert 'repo-path' in names and 'repo-sftp-host' not in names
    assert fake.argvs[0] == [PGBACKREST, 'help']
    assert [a[-1] for a in fake.argvs[1:]] == COMMANDS
    # Each command's help parses an empty configuration, never the live file (which may be broken).
    for argv in fake.argvs[1:]:
        config = [a for a in argv if a.startswith('--config=')]
        assert config and config[0] != '--config=/etc/pgbackrest/pgbackrest.conf'
        assert any(a.startswith('--config-include-path=') for a in argv)
    assert len(names) == 108


def test_module_constants_match_pgbackrest_status_codes():
    assert pgbr_mod.STANZA_MISSING_CODES == (1, 3)
    assert (pgbr_mod.STATUS_OK, pgbr_mod.STATUS_NO_BACKUP) == (0, 2)
