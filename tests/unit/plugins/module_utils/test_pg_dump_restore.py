# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a dump into a new database and comparing it with the manifest."""

from __future__ import annotations

import os
import re
import socket

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
    job, host, sessions = restore(os.path.dirname(unit['path']), jobs=3, no_owner=True, no_privileges=True,
                                  include_globals=True)
    result = job.run()
    assert result['matches'] is True and result['tables_compared'] == 5 and result['rows_total'] == 1108
    assert result['source'] == unit['path'] and result['globals_restored'] is True
    programs = [(os.path.basename(c['argv'][0]), c['argv']) for c in host.calls]
    order = [p for p, argv in programs if p in ('psql', 'pg_restore')]
    globals_call = [argv for p, argv in programs if p == 'psql' and '-f' in argv][0]
    assert os.path.basename(globals_call[globals_call.index('-f') + 1]).startswith('.globals-')
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
    assert [os.path.basename(c['argv'][0]) for c in host.calls] == ['pg_lsclusters']  # the lock, nothing else


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
    job, host, sessions = restore(unit['path'], include_globals=True)
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


def test_decrypted_files_of_a_killed_restore_are_removed_by_the_next_one(tmp_path):
    unit = dumped(tmp_path, passphrase=SECRET)
    parent = os.path.dirname(unit['path'])
    # What a restore killed while decrypting leaves: its host and a pid that no longer runs.
    host_name = re.sub(r'[^A-Za-z0-9.]', '_', socket.gethostname())
    left = os.path.join(parent, '%s%s-%d' % (layout.RESTORE_PREFIX, host_name, 2 ** 22 + 7))
    os.mkdir(left, 0o700)
    with open(os.path.join(left, 'appdb.dump'), 'w') as handle:
        handle.write('decrypted rows')
    job, host, sessions = restore(unit['path'], passphrase=SECRET)
    assert job.run()['matches']
    assert sorted(os.listdir(parent)) == [unit['name']]


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


# --- globals: not replayed unless asked, and never over an existing role -----------------------------

GLOBALS = '''--
-- PostgreSQL database cluster dump
--

\\restrict abc123

CREATE ROLE app;
ALTER ROLE app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:old';
CREATE ROLE "Report ""R""";
ALTER ROLE "Report ""R""" WITH LOGIN PASSWORD 'md5abc';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
COMMENT ON ROLE app IS 'the
application';
ALTER ROLE app SET search_path TO 'shop';
CREATE TABLESPACE fast OWNER postgres LOCATION '/srv/fast';
GRANT readers TO app WITH INHERIT TRUE GRANTED BY postgres;
GRANT readers TO "Report ""R""" GRANTED BY postgres;

\\unrestrict abc123
'''


def test_filter_globals_leaves_existing_roles_alone_and_creates_the_missing_ones():
    sql, outcome = dump_restore.filter_globals(GLOBALS, ['postgres', 'app', 'readers'])
    assert 'SCRAM-SHA-256$4096:old' not in sql and 'CREATE ROLE app;' not in sql
    assert 'search_path' not in sql and 'COMMENT ON ROLE' not in sql and 'application' not in sql
    assert 'GRANT readers TO app' not in sql and 'ALTER ROLE postgres' not in sql
    assert 'CREATE ROLE "Report ""R""";' in sql and "PASSWORD 'md5abc'" in sql
    assert 'GRANT readers TO "Report ""R"""' in sql and "LOCATION '/srv/fast'" in sql
    assert '\\restrict abc123' in sql and '\\unrestrict abc123' in sql
    assert outcome == {'created': ['Report "R"'], 'left_unchanged': ['app', 'postgres'], 'statements_left_out': 7}


def test_filter_globals_on_an_empty_cluster_keeps_everything():
    sql, outcome = dump_restore.filter_globals(GLOBALS, [])
    assert sql == GLOBALS and outcome['created'] == ['app', 'Report "R"', 'postgres']


def _capture_globals(host, seen):
    def handler(argv, env, data):
        with open(argv[argv.index('-f') + 1]) as handle:
            seen.append(handle.read())
        return 0, '', ''
    host.when(lambda argv: '-f' in argv and 'ON_ERROR_STOP=1' not in argv, handler)


def test_globals_are_not_replayed_unless_asked(tmp_path):
    unit = dumped(tmp_path)
    job, host, sessions = restore(unit['path'])
    result = job.run()
    assert result['globals_restored'] is False and result['globals'] is None
    assert not [a for a in host.argvs('psql') if '-f' in a]
    assert 'SELECT rolname FROM pg_catalog.pg_roles ORDER BY rolname' not in host.sql


def test_asked_globals_never_touch_an_existing_role(tmp_path):
    unit = dumped(tmp_path)
    with open(os.path.join(unit['path'], 'globals.sql'), 'w') as handle:
        handle.write(GLOBALS)
    _fix_manifest(unit['path'])
    host = fakes.FakeHost()
    host.roles = ['app', 'postgres', 'readers']
    seen = []
    _capture_globals(host, seen)
    job, host, sessions = restore(unit['path'], host=host, include_globals=True)
    result = job.run()
    (text,) = seen
    assert 'SCRAM-SHA-256$4096:old' not in text and "PASSWORD 'md5abc'" in text
    assert result['globals'] == {'created': ['Report "R"'], 'left_unchanged': ['app', 'postgres'],
                                 'statements_left_out': 7}
    assert not [f for f in os.listdir(str(tmp_path)) if f.startswith('.globals-')]


def test_the_filtered_globals_go_to_a_private_work_directory_the_next_run_cleans(tmp_path):
    unit = dumped(tmp_path)
    with open(os.path.join(unit['path'], 'globals.sql'), 'w') as handle:
        handle.write(GLOBALS)
    _fix_manifest(unit['path'])
    host = fakes.FakeHost()
    places = []
    host.when(lambda argv: '-f' in argv and 'ON_ERROR_STOP=1' not in argv,
              lambda argv, env, data: places.append(os.path.dirname(argv[argv.index('-f') + 1])) or (0, '', ''))
    job, host, sessions = restore(unit['path'], host=host, include_globals=True, work_dir=str(tmp_path / 'work'))
    os.mkdir(str(tmp_path / 'work'))
    job.run()
    (place,) = places
    # Named after host and process (what dump_crypto.remove_stale_work clears after a kill), mode 0700 ...
    assert os.path.dirname(place) == str(tmp_path / 'work')
    assert os.path.basename(place).startswith(layout.RESTORE_PREFIX) and place.endswith('-%d' % os.getpid())
    # ... and gone when the restore is done.
    assert os.listdir(str(tmp_path / 'work')) == []


def _fix_manifest(unit_path, **changes):
    """Rewrite the manifest (sizes and checksums of changed files, and the given fields)."""
    import json
    path = os.path.join(unit_path, 'manifest.json')
    with open(path) as handle:
        manifest = json.load(handle)
    for entry in manifest['files']:
        full = os.path.join(unit_path, entry['path'])
        entry['size'] = os.path.getsize(full)
        entry['sha256'] = layout.sha256_file(full)
    for key, value in changes.items():
        if key == 'system_identifier':
            manifest['database_info']['system_identifier'] = value
        else:
            manifest[key] = value
    with open(path, 'w') as handle:
        json.dump(manifest, handle)


# --- drop_existing: not the original, not under sessions -------------------------------------------------

def own_source(unit, host, **kwargs):
    sessions = fakes.Sessions(restored=fakes.DEFAULT_TABLES)
    host.existing.add('appdb')
    return dump_restore.RestoreJob(host.runner(), unit['path'], 'appdb', owner=fakes.no_owner, sessions=sessions,
                                   drop_existing=True, hostname='db1.example.com', **kwargs)


def test_drop_existing_refuses_the_database_the_dump_came_from_on_the_same_cluster(tmp_path):
    unit = dumped(tmp_path)
    _fix_manifest(unit['path'], system_identifier='7440000000000000001')
    host = fakes.FakeHost()
    with pytest.raises(EngineError) as err:
        own_source(unit, host).run()
    assert "database 'appdb' is the database this dump was taken from" in err.value.msg
    assert 'same system identifier 7440000000000000001' in err.value.msg and 'force' in err.value.hint
    assert not [s for s in host.sql if s.startswith(('DROP', 'CREATE'))] and host.argvs('pg_restore') == []
    with pytest.raises(EngineError):
        own_source(unit, fakes.FakeHost()).plan()  # check mode says the same
    host = fakes.FakeHost()
    host.system_identifier = '7440000000000000999'  # another cluster: a restore of a copy
    assert own_source(unit, host).run()['dropped_existing'] is True
    host = fakes.FakeHost()
    own_source(unit, host, force=True).run()
    assert 'DROP DATABASE IF EXISTS "appdb" WITH (FORCE)' in host.sql


def test_without_a_system_identifier_a_dump_of_this_host_counts_as_the_same_cluster(tmp_path):
    unit = dumped(tmp_path)
    _fix_manifest(unit['path'], host='db1.example.com')
    with pytest.raises(EngineError) as err:
        own_source(unit, fakes.FakeHost()).run()
    assert 'taken on this host (db1.example.com)' in err.value.msg
    _fix_manifest(unit['path'], host='db2.example.com')
    assert own_source(unit, fakes.FakeHost()).run()['dropped_existing'] is True


def test_drop_existing_refuses_a_database_with_sessions_unless_forced(tmp_path):
    unit = dumped(tmp_path)
    host = fakes.FakeHost()
    host.existing.add('appdb_restored')
    host.sessions['appdb_restored'] = [(4711, 'app', 'shop-api', '10.0.0.5')]
    job, host, sessions = restore(unit['path'], host=host, drop_existing=True)
    with pytest.raises(EngineError) as err:
        job.run()
    assert "database 'appdb_restored' has 1 active session(s): pid 4711 (app shop-api, 10.0.0.5)" in err.value.msg
    assert 'force' in err.value.hint and not [s for s in host.sql if s.startswith('DROP')]
    job, host, sessions = restore(unit['path'], host=host, drop_existing=True, force=True)
    job.run()
    assert 'DROP DATABASE IF EXISTS "appdb_restored" WITH (FORCE)' in host.sql


def test_force_terminates_sessions_itself_before_postgresql_13(tmp_path):
    unit = dumped(tmp_path)
    host = fakes.FakeHost(server_version_num=120015)
    host.existing.add('appdb_restored')
    host.sessions['appdb_restored'] = [(4711, 'app', '', 'local')]
    job, host, sessions = restore(unit['path'], host=host, drop_existing=True, force=True)
    job.run()
    terminate = [i for i, s in enumerate(host.sql) if 'pg_terminate_backend' in s]
    assert terminate and terminate[0] < host.sql.index('DROP DATABASE IF EXISTS "appdb_restored"')


# --- the target cluster's lock ------------------------------------------------------------------------------

def test_a_dump_restore_is_refused_while_another_job_holds_the_cluster(tmp_path):
    from ansible_collections.pgops.backup.plugins.module_utils import cluster_lock
    from ansible_collections.pgops.backup.plugins.module_utils.cluster_lock import ClusterBusy, ClusterLock
    unit = dumped(tmp_path)
    job, host, sessions = restore(unit['path'])
    with ClusterLock('17/main', job='pitr', lock_dir=cluster_lock.DEFAULT_LOCK_DIR):
        with pytest.raises(ClusterBusy) as err:
            job.run()
    assert 'cluster 17/main is busy: pitr (pid %d' % os.getpid() in err.value.msg
    assert [os.path.basename(c['argv'][0]) for c in host.calls] == ['pg_lsclusters']
    result = job.run()
    assert result['cluster_lock']['cluster'] == '17/main' and result['cluster_lock']['stale'] is None
    with ClusterLock('17/main', job='pitr', lock_dir=cluster_lock.DEFAULT_LOCK_DIR):  # released after the run
        pass


def test_the_lock_key_is_the_cluster_of_the_port_then_its_cluster_name(tmp_path):
    from ansible_collections.pgops.backup.plugins.module_utils.pg_dump import Connection
    host = fakes.FakeHost()
    job = dump_restore.RestoreJob(host.runner(), str(tmp_path), 'x', connection=Connection(port=5433))
    host.when(lambda argv: '-c' in argv and argv[-1] == 'SHOW cluster_name',
              lambda argv, env, data: (0, '16/other\x1e', ''))
    assert job.cluster_key() == '16/other'
    job = dump_restore.RestoreJob(host.runner(), str(tmp_path), 'x', connection=Connection(host='db9.example.com'))
    assert job.cluster_key() is None
    job = dump_restore.RestoreJob(host.runner(), str(tmp_path), 'x', connection=Connection(host='/var/run/postgresql'))
    assert job.cluster_key() == '17/main'


def test_the_host_command_restores_globals_only_when_asked():
    import argparse
    from ansible_collections.pgops.backup.plugins.module_utils import cli_dump
    parser = argparse.ArgumentParser()
    cli_dump.register(parser.add_subparsers(dest='command'))
    args = parser.parse_args(['restore-dump', '--source', '/d', '--target-database', 'x'])
    assert args.with_globals is False and args.force is False
    args = parser.parse_args(['restore-dump', '--source', '/d', '--target-database', 'x', '--globals', '--force'])
    assert args.with_globals is True and args.force is True


def test_a_lock_directory_that_cannot_be_made_is_a_clear_error(tmp_path):
    unit = dumped(tmp_path)
    (tmp_path / 'not-a-dir').write_text('')
    job, host, sessions = restore(unit['path'], lock_dir=str(tmp_path / 'not-a-dir' / 'locks'))
    with pytest.raises(EngineError) as err:
        job.run()
    assert err.value.msg.startswith('cannot take the lock of cluster 17/main in %s' % (tmp_path / 'not-a-dir' / 'locks'))
    assert 'install -d -o postgres -g postgres -m 0770' in err.value.hint and host.argvs('pg_restore') == []


def test_this_host_by_its_name_or_one_of_its_addresses_shares_the_cluster_lock(monkeypatch):
    import socket
    monkeypatch.setattr(socket, 'gethostname', lambda: 'db1')
    monkeypatch.setattr(socket, 'getfqdn', lambda name='': 'db1.example.com')
    resolved = {'db1-admin.example.com': ['127.0.0.2'], 'db9.example.com': ['192.0.2.7']}
    real = dump_restore._addresses  # numeric addresses resolve without a name service
    monkeypatch.setattr(dump_restore, '_addresses', lambda host: resolved.get(host) or (real(host) if host[0].isdigit() else []))
    for host in (None, '', '/var/run/postgresql', 'localhost', '::1', 'DB1', 'db1.example.com',
                 '127.0.0.2', 'db1-admin.example.com'):
        assert dump_restore.is_this_host(host), host
    # Another machine: an address no interface here can bind, or a name that does not resolve.
    for host in ('192.0.2.7', 'db9.example.com', 'nowhere.invalid'):
        assert not dump_restore.is_this_host(host), host
