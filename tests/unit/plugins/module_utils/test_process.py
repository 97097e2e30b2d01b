# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runner: run_as wrapping, environment, recording and failures; subprocess_run on real processes."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import process
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Runner
from ansible_collections.pgops.backup.tests.unit.fakes import FakeProcess

ARGV = ['/usr/bin/pgbackrest', '--stanza=main', 'info']


def runner(fake, **kwargs):
    return Runner(run=fake, which=fake.which, **kwargs)


@pytest.fixture
def euid(monkeypatch):
    def set_euid(value):
        monkeypatch.setattr(process.os, 'geteuid', lambda: value)
    return set_euid


def test_root_runs_as_the_given_user_through_runuser(euid):
    euid(0)
    fake = FakeProcess().on('info', out='[]')
    r = runner(fake, run_as='postgres')
    r.run(ARGV)
    assert fake.argvs == [['/usr/bin/runuser', '-u', 'postgres', '--'] + ARGV]
    assert r.commands == [' '.join(ARGV)]


@pytest.mark.parametrize('uid, run_as', [(1000, 'postgres'), (0, 'root'), (0, None), (0, '')])
def test_no_runuser(euid, uid, run_as):
    euid(uid)
    fake = FakeProcess().on('info', out='[]')
    runner(fake, run_as=run_as).run(ARGV)
    assert fake.argvs == [ARGV]


def test_missing_runuser(euid):
    euid(0)
    fake = FakeProcess(missing=['runuser']).on('info')
    with pytest.raises(EngineError) as caught:
        runner(fake, run_as='postgres').run(ARGV)
    assert caught.value.hint == 'install the util-linux package'
    assert fake.calls == []


def test_environment_and_input_reach_the_process():
    fake = FakeProcess().on('notify')
    r = runner(fake, env={'PGOPS_A': '1', 'PGOPS_B': 'x'})
    r.run(['notify', 3], env={'PGOPS_B': '2'}, data='log lines\n')
    assert fake.calls[0]['env'] == {'PGOPS_A': '1', 'PGOPS_B': '2'}
    assert fake.calls[0]['data'] == 'log lines\n'
    assert fake.argvs == [['notify', '3']] and r.commands == ['notify 3']


def test_result_of_a_command():
    fake = FakeProcess().on('info', out='[]', err='WARN: x\n')
    result = runner(fake).run(ARGV)
    assert (result.argv, result.rc, result.stdout, result.stderr) == (ARGV, 0, '[]', 'WARN: x\n')
    assert result.seconds >= 0


def test_failure_raises_unless_check_is_off():
    fake = FakeProcess().on('info', rc=3, out='partial', err='boom\n')
    r = runner(fake)
    assert r.run(ARGV, check=False).rc == 3
    with pytest.raises(EngineError) as caught:
        r.run(ARGV, what='reading backups')
    err = caught.value
    assert (err.msg, err.argv, err.rc, err.stdout, err.stderr) == ('reading backups failed', ARGV, 3, 'partial', 'boom\n')
    with pytest.raises(EngineError) as caught:
        r.run(ARGV)
    assert caught.value.msg == 'pgbackrest failed'
    assert len(r.commands) == 3


def test_none_output_becomes_empty_text():
    r = Runner(run=lambda argv, env=None, data=None: (0, None, None), which=FakeProcess().which)
    result = r.run(['true'])
    assert (result.stdout, result.stderr) == ('', '')


def test_stream_only_when_asked_and_configured():
    lines = []
    fake = FakeProcess().on('backup', out='one\ntwo\n')
    r = runner(fake, stream=lines.append)
    r.run(['pgbackrest', 'backup'])
    r.run(['pgbackrest', 'backup'], stream=True)
    runner(fake).run(['pgbackrest', 'backup'], stream=True)
    assert [c['stream'] for c in fake.calls] == [False, True, False]
    assert lines == ['one', 'two']


def test_subprocess_run_captures_output_and_takes_input_and_env():
    code = 'import os, sys; sys.stdout.write(sys.stdin.read().upper() + os.environ["PGOPS_T"]); sys.stderr.write("e")'
    rc, out, err = process.subprocess_run([sys.executable, '-c', code], env={'PGOPS_T': '!'}, data='abc')
    assert (rc, out, err) == (0, 'ABC!', 'e')


def test_subprocess_run_returns_the_exit_code():
    assert process.subprocess_run([sys.executable, '-c', 'raise SystemExit(37)'])[0] == 37


def test_subprocess_run_streams_lines_with_stderr_merged():
    lines = []
    code = 'import sys; print("a"); sys.stdout.flush(); sys.stderr.write("b\\n"); sys.stderr.flush(); print("c")'
    rc, out, err = process.subprocess_run([sys.executable, '-c', code], stream=lines.append)
    assert rc == 0 and lines == ['a', 'b', 'c'] and out == 'a\nb\nc\n' and err == ''


def test_system_which():
    found = process.system_which('sh')
    assert found and os.path.isabs(found)
    assert process.system_which('pgops-no-such-program') is None


def test_progress_printer(capsys):
    process.progress_printer('pgops-test')('line 1')
    assert capsys.readouterr().err == 'pgops-test: line 1\n'
