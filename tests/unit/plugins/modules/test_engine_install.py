"""engine_install ships every engine file, writes only what differs and removes stale files."""

import os

from ansible_collections.pgops.backup.plugins.modules import engine_install
from fakes import FakeProcess, run_module

MODULE_UTILS = os.path.join(os.path.dirname(engine_install.__file__), '..', 'module_utils')


def test_every_engine_file_travels_with_the_module():
    on_disk = sorted(f for f in os.listdir(MODULE_UTILS) if f.endswith('.py') and f != '__init__.py')
    shipped = sorted(m.__name__.rsplit('.', 1)[-1] + '.py' for m in engine_install.ENGINE)
    assert shipped == on_disk


def test_first_run_writes_everything_then_nothing(monkeypatch, tmp_path):
    dest = str(tmp_path / 'pgops_engine')
    first = run_module(monkeypatch, engine_install, {'dest': dest}, FakeProcess())[1]
    assert first['changed'] is True
    assert 'cli.py' in first['written'] and '__init__.py' in first['written']
    with open(os.path.join(dest, 'cli.py'), 'rb') as handle:
        assert b'def main(' in handle.read()
    second = run_module(monkeypatch, engine_install, {'dest': dest}, FakeProcess())[1]
    assert second['changed'] is False and second['written'] == []


def test_changed_and_stale_files_are_fixed(monkeypatch, tmp_path):
    dest = str(tmp_path)
    run_module(monkeypatch, engine_install, {'dest': dest}, FakeProcess())[1]
    with open(os.path.join(dest, 'records.py'), 'w') as handle:
        handle.write('# edited by hand\n')
    with open(os.path.join(dest, 'old_job.py'), 'w') as handle:
        handle.write('')
    result = run_module(monkeypatch, engine_install, {'dest': dest}, FakeProcess())[1]
    assert result['written'] == ['records.py']
    assert result['removed'] == ['old_job.py']
    assert not os.path.exists(os.path.join(dest, 'old_job.py'))


def test_check_mode_changes_nothing(monkeypatch, tmp_path):
    dest = str(tmp_path / 'pgops_engine')
    result = run_module(monkeypatch, engine_install, {'dest': dest}, FakeProcess(), check_mode=True)[1]
    assert result['changed'] is True
    assert not os.path.exists(dest)
