# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest error lines -> code, message, hint and a message a person can act on."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import ERROR_HINTS, PgBackRest, parse_error
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.fakes import PGBACKREST, FakeProcess, fixture

LOCK_LINE = ("unable to acquire lock on file '/tmp/pgbackrest/main-backup.lock': "
             "Resource temporarily unavailable")
# pgBackRest's console format with log-timestamp: as in the captured INFO lines, at level ERROR.
TIMESTAMPED_LOCK = (
    "2026-11-21 09:12:57.222 P00   INFO: backup command begin 2.55.1: --exec-id=4727-95de6917 --stanza=main\n"
    "2026-11-21 09:12:57.229 P00  ERROR: [050]: " + LOCK_LINE + "\n"
    "                                    HINT: is another pgBackRest process running?\n"
    "2026-11-21 09:12:57.229 P00   INFO: backup command end: aborted with exception [050]\n")


@pytest.mark.parametrize('name', ['check-missing-2.45.err', 'check-missing-2.55.1.out'])
def test_check_without_stanza_config(name):
    assert parse_error(fixture(name)) == (37, 'check command requires option: pg1-path')


@pytest.mark.parametrize('name', ['backup-badtype-2.45.err', 'backup-badtype-2.55.1.out'])
def test_bad_option_value(name):
    code, message = parse_error(fixture(name))
    assert code == 32
    assert message == "'bogus' is not allowed for 'type' option"


def test_hint_line_is_not_part_of_the_message():
    code, message = parse_error(fixture('backup-badtype-2.55.1.out'))
    assert 'HINT' not in message and 'allowed values' not in message


def test_timestamped_error_line():
    assert parse_error(TIMESTAMPED_LOCK) == (50, LOCK_LINE)


def test_last_error_wins():
    text = fixture('check-missing-2.45.err') + fixture('backup-badtype-2.45.err')
    assert parse_error(text)[0] == 32


@pytest.mark.parametrize('text', ['', None, fixture('stanza-upgrade-uptodate-2.55.1.out'),
                                  'WARN: option repo1-retention-full is not set\n'])
def test_no_error_line(text):
    assert parse_error(text) == (None, None)


def _pgbr(fake, stanza='main'):
    return PgBackRest(Runner(run=fake, which=fake.which, run_as=None), stanza=stanza)


def test_error_from_stderr_of_245():
    fake = FakeProcess().on('check', rc=37, err=fixture('check-missing-2.45.err'))
    with pytest.raises(EngineError) as caught:
        _pgbr(fake, 'nope').run('check')
    err = caught.value
    assert err.code == 37
    assert err.msg == ('pgbackrest check failed with pgBackRest error [037] (option-required): '
                       'check command requires option: pg1-path')
    assert err.hint == ERROR_HINTS[37][1]
    assert err.argv == [PGBACKREST, '--stanza=nope', 'check'] and err.rc == 37
    full = err.full_message()
    assert full.startswith(err.msg + '; ')
    assert 'command: /usr/bin/pgbackrest --stanza=nope check (rc=37)' in full
    assert 'output: ERROR: [037]: check command requires option: pg1-path' in full
    assert 'HINT: does this stanza exist?' in full
    assert full.endswith('next step: ' + ERROR_HINTS[37][1])


def test_error_from_stdout_of_2551():
    fake = FakeProcess().on('check', rc=37, out=fixture('check-missing-2.55.1.out'))
    with pytest.raises(EngineError) as caught:
        _pgbr(fake, 'nope').run('check')
    assert caught.value.code == 37
    assert 'HINT: does this stanza exist?' in caught.value.full_message()


def test_as_dict_for_a_failed_command():
    fake = FakeProcess().on('backup', rc=50, out=TIMESTAMPED_LOCK)
    with pytest.raises(EngineError) as caught:
        _pgbr(fake).run('backup', '--type=incr')
    details = caught.value.as_dict()
    assert details['cmd'] == '/usr/bin/pgbackrest --stanza=main --type=incr backup'
    assert details['rc'] == 50 and details['error_code'] == 50
    assert details['stdout'] == TIMESTAMPED_LOCK and details['stderr'] == ''
    assert details['hint'] == ERROR_HINTS[50][1]
    assert '[050] (lock-acquire): ' + LOCK_LINE in details['msg']


def test_code_without_hint():
    err_text = "P00  ERROR: [041]: unable to open file '/etc/pgbackrest/pgbackrest.conf' for read: [13] Permission denied\n"
    fake = FakeProcess().on('info', rc=41, out=err_text)
    with pytest.raises(EngineError) as caught:
        _pgbr(fake).run('info')
    err = caught.value
    assert err.code == 41 and err.hint is None
    assert err.msg.startswith('pgbackrest info failed with pgBackRest error [041]: unable to open file')
    assert 'hint' not in err.as_dict() and 'next step' not in err.full_message()


def test_failure_without_error_line():
    fake = FakeProcess().on('info', rc=1, err='Segmentation fault\n')
    with pytest.raises(EngineError) as caught:
        _pgbr(fake).run('info')
    assert caught.value.msg == 'pgbackrest info failed'
    assert caught.value.code is None
    assert 'output: Segmentation fault' in caught.value.full_message()


def test_full_message_keeps_the_end_of_long_output():
    err = EngineError('x failed', argv=['x'], rc=1, stderr='a' * 3000 + 'END')
    output = err.full_message().split('output: ', 1)[1]
    assert len(output) == 2000 and output.endswith('END')


def test_engine_error_without_command():
    err = EngineError('no cluster', hint='set the version')
    assert err.full_message() == 'no cluster; next step: set the version'
    assert err.as_dict() == {'msg': 'no cluster; next step: set the version', 'hint': 'set the version'}
