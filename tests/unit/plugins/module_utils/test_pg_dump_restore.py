# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a dump into a new database and comparing it with the manifest."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest as layout
from ansible_collections.pgops.backup.plugins.module_utils import dump_restore
from ansible_collections.pgops.backup.plugins.module_utils import pg_dump as engine
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as fakes

SECRET = 'restore-test-passphrase-123'


def dumped(tmp_path, **kwargs):
    host = fakes.FakeHost()
    job = engine.DumpJob(host.runner(), str(tmp_path / 'dumps'), sessions=fakes.Sessions(), owner=fakes.no_owner,
                         clock=fakes.Clock(), **kwargs)
    job.run()
    return layout.list_units(str(tmp_path / 'dumps' / 'appdb'))[0]


def restore(source, restored_tables=None, host=None, **kwargs):
    host = host or fakes.FakeHost()
    sessions = fakes.Sessions(restored=restored_tables if restored_tables is not None else fakes.DEFAULT_TABLES)
    job = dump_restore.RestoreJob(host.runner(), source, 'appdb_restored', owner=fakes.no_owner, sessions=sessions,
                                  **kwargs)
    return job, host, sessions


def test_restore_runs_globals_first_then_creates_and_restores_and_matches(tmp_path):
    unit = dumped(tmp_path)
    job, host, sessions = restore(os.path.dirname(unit['path']), jobs=3, no_owner=True, no_privileges=True)
    result = job.run()
    assert result['matches'] is True and result['tables_compared'] == 5 and result['rows_total'] == 1108
    assert result['source'] == unit['path'] and result['globals_restored'] is True
    programs = [(os.path.basename(c['argv'][0]), c['argv']) for c in host.calls]
    order = [p for p, argv in programs if p in ('psql', 'pg_restore')]
    globals_call = [argv for p, argv in programs if p == 'psql' and '-f' in argv][0]
    assert globals_call[globals_call.index('-f') + 1].endswith('globals.sql')
    assert 'ON_ERROR_STOP=1' not in globals_call  # "role already exists" must not stop the rest
    assert host.sql[-1].startswith('CREATE DATABASE "appdb_restored" TEMPLATE template0 ENCODING ')
    assert order.index('pg_restore') > order.index('psql')
    (argv,) = host.argvs('pg_restore')
    assert argv[:5] == ['/usr/bin/pg_restore', '--exit-on-error', '--jobs=3', '--no-owner', '--no-privileges']
    assert argv[-2:] == ["--dbname=dbname='appdb_restored'", os.path.join(unit['path'], 'appdb.dump')]
    assert sessions.made[0].dbname == 'appdb_restored' and sessions.made[0].snapshot is None


def test_a_count_difference_fails_the_restore(tmp_path):
    unit = dumped(tmp_path)
    changed = [dict(t, rows=t['rows'] - 1) if t['name'] == 'measurements_2026' else t for t in fakes.DEFAULT_TABLES]
    job, host, sessions = restore(unit['path'], restored_tables=changed)
    with pytest.raises(dump_restore.RestoreMismatch) as err:
        job.run()
    assert 'measurements_2026 row count differs (expected 400, restored 399)' in err.value.msg
    assert err.value.result['matches'] is False


def test_a_damaged_dump_is_refused_before_anything_runs(tmp_path):
    unit = dumped(tmp_path)
    with open(os.path.join(unit['path'], 'appdb.dump'), 'ab') as handle:
        handle.write(b'!')
    job, host, sessions = restore(unit['path'])
    with pytest.raises(EngineError) as err:
        job.run()
    assert 'does not match its manifest' in err.value.msg
    assert host.calls == []


def test_an_existing_database_is_not_overwritten_unless_asked(tmp_path):
    unit = dumped(tmp_path)
    host = fakes.FakeHost()
    host.existing.add('appdb_restored')
    job, host, sessions = restore(unit['path'], host=host)
    with pytest.raises(EngineError) as err:
        job.run()
    assert 'already exists' in err.value.msg and host.argvs('pg_restore') == []
    job, host, sessions = restore(unit['path'], host=host, drop_existing=True)
    job.run()
    assert 'DROP DATABASE IF EXISTS "appdb_restored" WITH (FORCE)' in host.sql


def test_globals_errors_other_than_already_exists_fail(tmp_path):
    unit = dumped(tmp_path)
    job, host, sessions = restore(unit['path'])
    host.when(lambda argv: '-f' in argv, lambda argv, env, data: (
        0, '', 'psql:globals.sql:3: ERROR:  role "postgres" already exists\n'
               'psql:globals.sql:9: ERROR:  could not set permissions on directory "/srv/ts": No such file\n'))
    with pytest.raises(EngineError) as err:
        job.run()
    assert '/srv/ts' in err.value.msg
    job, host, sessions = restore(unit['path'], include_globals=False)
    job.run()
    assert not [a for a in host.argvs('psql') if '-f' in a]


def test_encrypted_dump_is_decrypted_privately_and_cleaned_up(tmp_path):
    unit = dumped(tmp_path, passphrase=SECRET)
    job, host, sessions = restore(unit['path'])
    with pytest.raises(EngineError):
        job.run()  # no passphrase
    job, host, sessions = restore(unit['path'], passphrase=SECRET)
    result = job.run()
    assert result['matches'] and result['encrypted']
    (argv,) = host.argvs('pg_restore')
    work = os.path.dirname(argv[-1])
    assert os.path.basename(work).startswith(layout.RESTORE_PREFIX) and not os.path.exists(work)
    assert all(c['data'] == SECRET for c in host.calls if os.path.basename(c['argv'][0]) == 'gpg')
    assert not any(SECRET in ' '.join(c['argv']) for c in host.calls)
    assert sorted(os.listdir(os.path.dirname(unit['path']))) == [unit['name']]


def test_wrong_passphrase_fails_and_leaves_nothing(tmp_path):
    unit = dumped(tmp_path, passphrase=SECRET)
    job, host, sessions = restore(unit['path'], passphrase='not it')
    with pytest.raises(EngineError) as err:
        job.run()
    assert 'could not decrypt' in err.value.msg and 'Bad session key' in err.value.stderr
    assert host.argvs('pg_restore') == []
    assert sorted(os.listdir(os.path.dirname(unit['path']))) == [unit['name']]


def test_pg_restore_failure_keeps_rc_and_stderr(tmp_path):
    unit = dumped(tmp_path)
    job, host, sessions = restore(unit['path'])
    host.when(lambda argv: os.path.basename(argv[0]) == 'pg_restore' and '--list' not in argv,
              lambda argv, env, data: (1, '', 'pg_restore: error: could not execute query: ERROR:  boom\n'))
    with pytest.raises(EngineError) as err:
        job.run()
    assert err.value.rc == 1 and 'boom' in err.value.stderr and 'left as it is' in err.value.hint


def test_plain_dumps_restore_with_psql_and_refuse_owner_options(tmp_path):
    unit = dumped(tmp_path, fmt='plain')
    job, host, sessions = restore(unit['path'], no_owner=True)
    with pytest.raises(EngineError):
        job.run()
    job, host, sessions = restore(unit['path'])
    assert job.run()['matches']
    restore_call = [a for a in host.argvs('psql') if '-f' in a and 'ON_ERROR_STOP=1' in a]
    assert restore_call and restore_call[0][-1].endswith('appdb.sql')


def test_check_mode_plan_changes_nothing(tmp_path):
    unit = dumped(tmp_path)
    job, host, sessions = restore(unit['path'])
    plan = job.plan()
    assert plan['source'] == unit['path'] and plan['target_exists'] is False and plan['tables'] == 5
    assert host.argvs('pg_restore') == [] and sessions.made == []
    assert not [s for s in host.sql if s.startswith(('CREATE', 'DROP'))]


@pytest.mark.parametrize('info,version,expected', [
    ({'encoding': 'UTF8', 'collate': 'de_DE.UTF-8', 'ctype': 'de_DE.UTF-8', 'locale_provider': 'libc'}, 170000,
     "CREATE DATABASE \"x y\" TEMPLATE template0 ENCODING E'UTF8' LC_COLLATE E'de_DE.UTF-8' LC_CTYPE E'de_DE.UTF-8'"),
    ({'encoding': 'UTF8', 'locale_provider': 'icu', 'locale': 'und'}, 150000,
     "CREATE DATABASE \"x y\" TEMPLATE template0 ENCODING E'UTF8' LOCALE_PROVIDER icu ICU_LOCALE E'und'"),
    ({'locale_provider': 'builtin', 'locale': 'C.UTF-8'}, 170000,
     "CREATE DATABASE \"x y\" TEMPLATE template0 LOCALE_PROVIDER builtin BUILTIN_LOCALE E'C.UTF-8'"),
    (None, 150000, 'CREATE DATABASE "x y" TEMPLATE template0'),
])
def test_create_database_keeps_the_source_encoding_and_locale(info, version, expected):
    assert dump_restore.create_database_sql('x y', info, version) == expected


def test_drop_database_force_only_where_supported():
    assert dump_restore.drop_database_sql('a"b', 130000) == 'DROP DATABASE IF EXISTS "a""b" WITH (FORCE)'
    assert dump_restore.drop_database_sql('a', 120000) == 'DROP DATABASE IF EXISTS "a"'
