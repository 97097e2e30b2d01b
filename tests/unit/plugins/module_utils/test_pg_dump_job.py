# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DumpJob end to end against the fake process boundary and a fake snapshot session:
atomic write, cleanup on failure, manifest contents, encryption, retention, check mode."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest as layout
from ansible_collections.pgops.backup.plugins.module_utils import pg_dump as engine
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as fakes

DAY = 86400


def make_job(tmp_path, host=None, sessions=None, clock=None, **kwargs):
    host = host or fakes.FakeHost()
    sessions = sessions or fakes.Sessions()
    job = engine.DumpJob(host.runner(), str(tmp_path / 'dumps'), sessions=sessions, owner=fakes.no_owner,
                         clock=clock or fakes.Clock(), host='db1.example', job='nightly', **kwargs)
    return job, host, sessions


def only_unit(tmp_path, database='appdb'):
    units = layout.list_units(str(tmp_path / 'dumps' / layout.encode_name(database)))
    assert len(units) == 1, units
    return units[0]


def test_a_good_dump_is_renamed_into_place_with_globals_and_manifest(tmp_path):
    job, host, sessions = make_job(tmp_path, exclude_table_data=['cache_*'])
    host.exclude = ('cache_junk',)
    result = job.run()
    assert result['failed'] == [] and len(result['dumps']) == 1
    unit = only_unit(tmp_path)
    assert sorted(os.listdir(unit['path'])) == ['appdb.dump', 'globals.sql', 'manifest.json']
    assert not [n for n in os.listdir(os.path.dirname(unit['path'])) if n.startswith('.')]
    assert not [n for n in os.listdir(str(tmp_path / 'dumps')) if n.startswith(layout.PARTIAL_PREFIX)]
    manifest = unit['manifest']
    assert manifest['database'] == 'appdb' and manifest['job'] == 'nightly' and manifest['host'] == 'db1.example'
    assert manifest['snapshot'] == '00000003-0000001B-1'
    assert manifest['pg_dump_version'].startswith('pg_dump (PostgreSQL) 17.12')
    assert manifest['server_version_num'] == 170012
    assert manifest['options']['compression'] == 'zstd' and manifest['options']['compression_level'] == 3
    assert manifest['globals_path'] == 'globals.sql' and manifest['dump_path'] == 'appdb.dump'
    assert manifest['duration_seconds'] > 0 and manifest['started_at'] < manifest['finished_at']
    assert layout.verify_files(unit['path'], manifest['files']) == []
    assert [f['role'] for f in manifest['files']] == ['dump', 'globals']
    assert manifest['size_bytes'] == sum(os.path.getsize(os.path.join(unit['path'], f['path'])) for f in manifest['files'])


def test_the_dump_uses_the_sessions_snapshot_and_counts_come_from_it(tmp_path):
    job, host, sessions = make_job(tmp_path, exclude_table_data=['cache_*'])
    host.exclude = ('cache_junk',)
    job.run()
    (dump_argv,) = [a for a in host.argvs('pg_dump') if any(x.startswith('--file=') for x in a)]
    assert '--snapshot=00000003-0000001B-1' in dump_argv
    # the transaction stays open while pg_dump runs: counts collected and session closed after it
    assert sessions.log == [('open', 'appdb'), ('counts', 'appdb'), ('close', 'appdb')]
    tables = dict((t['name'], t) for t in only_unit(tmp_path)['manifest']['tables'])
    assert tables['cache_junk']['rows'] == 5 and tables['cache_junk']['data_in_dump'] is False
    assert tables['Mixed Case Table']['data_in_dump'] is True and tables['Mixed Case Table']['schema'] == 'Sales \u00dc'
    assert tables['measurements']['rows'] is None and tables['measurements']['in_dump'] is True
    manifest = only_unit(tmp_path)['manifest']
    assert manifest['rows_total'] == 100 + 600 + 400 + 3  # cache_junk's data is not in the dump
    assert layout.expected_counts(manifest)[('public', 'cache_junk')] == 0


def test_files_are_private(tmp_path):
    job, host, sessions = make_job(tmp_path, fmt='directory', jobs=2)
    job.run()
    unit = only_unit(tmp_path)
    for dirpath, dirnames, filenames in os.walk(unit['path']):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
        for name in filenames:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(str(tmp_path / 'dumps')).st_mode) == 0o700


def test_directory_format_checksums_every_file(tmp_path):
    job, host, sessions = make_job(tmp_path, fmt='directory', jobs=3)
    job.run()
    manifest = only_unit(tmp_path)['manifest']
    assert [f['path'] for f in manifest['files'] if f['role'] == 'dump'] == [
        'appdb.dir/3001.dat.zst', 'appdb.dir/3002.dat.zst', 'appdb.dir/toc.dat']
    (argv,) = [a for a in host.argvs('pg_dump') if '--format=directory' in a]
    assert '--jobs=3' in argv


def _fail_pg_dump(host, rc, err, partial=True):
    def handler(argv, env, data):
        path = fakes.option(argv, 'file')
        if partial:
            with open(path, 'wb') as handle:
                handle.write(b'PGDMP half an archive')
        return rc, '', err
    host.when(lambda argv: os.path.basename(argv[0]) == 'pg_dump' and any(a.startswith('--file=') for a in argv),
              handler)


@pytest.mark.parametrize('rc,err', [
    (1, 'pg_dump: error: could not write to file: No space left on device\n'),
    (-9, ''),  # killed
    (0, 'pg_dump: error: query failed: ERROR:  could not open relation with OID 16523\n'),  # exit 0 after an error
])
def test_a_failed_dump_leaves_no_partial_file_and_earlier_dumps_intact(tmp_path, rc, err):
    clock = fakes.Clock()
    job, host, sessions = make_job(tmp_path, clock=clock)
    job.run()
    before = only_unit(tmp_path)
    listing = fakes.tree(before['path'])
    job2, host2, sessions2 = make_job(tmp_path, clock=clock)
    _fail_pg_dump(host2, rc, err)
    result = job2.run()
    assert [f['database'] for f in result['failed']] == ['appdb'] and result['dumps'] == []
    assert result['failed'][0]['rc'] == rc
    assert len(job2.errors) == 1 and job2.errors[0].stderr == err
    after = only_unit(tmp_path)
    assert after['path'] == before['path'] and fakes.tree(after['path']) == listing
    assert layout.verify_files(after['path'], after['manifest']['files']) == []
    assert not [n for n in os.listdir(os.path.dirname(before['path'])) if n.startswith('.')]
    assert sessions2.log[-1] == ('abort', 'appdb')


def test_one_failing_database_does_not_stop_the_others(tmp_path):
    host = fakes.FakeHost(databases=['a', 'b'])

    def handler(argv, env, data):
        return 1, '', 'pg_dump: error: permission denied\n'
    host.when(lambda argv: "--dbname=dbname='a'" in argv and any(x.startswith('--file=') for x in argv), handler)
    job, host, sessions = make_job(tmp_path, host=host)
    result = job.run()
    assert [d['database'] for d in result['dumps']] == ['b']
    assert [f['database'] for f in result['failed']] == ['a']
    assert not os.listdir(str(tmp_path / 'dumps' / 'a'))


def test_pg_restore_list_must_succeed_before_a_dump_counts(tmp_path):
    job, host, sessions = make_job(tmp_path)
    host.when(lambda argv: '--list' in argv, lambda argv, env, data: (1, '', 'pg_restore: error: input file is too short\n'))
    result = job.run()
    assert result['dumps'] == [] and 'pg_restore --list' in result['failed'][0]['error']
    assert layout.list_units(str(tmp_path / 'dumps' / 'appdb')) == []
    assert os.listdir(str(tmp_path / 'dumps' / 'appdb')) == []


def test_globals_written_empty_with_exit_0_fail_the_run(tmp_path):
    """pg_dumpall --globals-only exits 0 with an empty file on a full disk (seen on PostgreSQL 17)."""
    job, host, sessions = make_job(tmp_path)

    def empty(argv, env, data):
        open(fakes.option(argv, 'file'), 'w').close()
        return 0, '', ''
    host.when(lambda argv: os.path.basename(argv[0]) == 'pg_dumpall', empty)
    with pytest.raises(EngineError) as err:
        job.run()
    assert 'incomplete' in err.value.msg
    assert os.listdir(str(tmp_path / 'dumps')) == [layout.LOCK_FILE]
    assert host.argvs('pg_dump')[-1][1] == '--help'  # no database was dumped


def test_session_failure_is_reported_and_cleaned(tmp_path):
    job, host, sessions = make_job(tmp_path, sessions=fakes.Sessions(fail_open='database session failed: boom'))
    result = job.run()
    assert 'boom' in result['failed'][0]['error']
    assert os.listdir(str(tmp_path / 'dumps' / 'appdb')) == []


def test_a_second_job_on_the_same_destination_is_refused(tmp_path):
    job, host, sessions = make_job(tmp_path)
    os.makedirs(str(tmp_path / 'dumps'))
    with open(str(tmp_path / 'dumps' / layout.LOCK_FILE), 'a+') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(EngineError) as err:
            job.run()
    assert err.value.code == 'locked'
    assert host.argvs('pg_dumpall') == []


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    stale = tmp_path / 'dumps' / 'appdb' / (layout.PARTIAL_PREFIX + '20261101T000000Z-999')
    stale.mkdir(parents=True)
    (stale / 'appdb.dump').write_bytes(b'half')
    other = tmp_path / 'dumps' / 'appdb' / 'notes.txt'
    other.write_text('not ours')
    job, host, sessions = make_job(tmp_path)
    job.run()
    assert not stale.exists()
    assert other.exists()


def test_encrypted_dump_passes_the_passphrase_on_stdin_only(tmp_path):
    secret = 'correct horse battery staple 42'
    job, host, sessions = make_job(tmp_path, passphrase=secret)
    job.run()
    unit = only_unit(tmp_path)
    assert sorted(os.listdir(unit['path'])) == ['appdb.dump.gpg', 'globals.sql.gpg', 'manifest.json']
    manifest = unit['manifest']
    assert manifest['encrypted'] is True and manifest['dump_path'] == 'appdb.dump.gpg'
    assert manifest['globals_path'] == 'globals.sql.gpg'
    assert layout.verify_files(unit['path'], manifest['files']) == []  # checksums are of the encrypted files
    gpg_calls = [c for c in host.calls if os.path.basename(c['argv'][0]) == 'gpg']
    assert len(gpg_calls) == 2 and all(c['data'] == secret for c in gpg_calls)
    assert all('--passphrase-fd' in c['argv'] and '--no-symkey-cache' in c['argv'] for c in gpg_calls)
    for call in host.calls:
        assert secret not in ' '.join(call['argv']) and secret not in json.dumps(call['env'])
    assert secret not in ' '.join(job.runner.commands)
    assert secret not in open(os.path.join(unit['path'], 'manifest.json')).read()


def _seed(tmp_path, ages, database='appdb'):
    """Good dumps finished `ages` days before the clock's start."""
    clock = fakes.Clock(start=1795000000.0)
    for age in sorted(ages, reverse=True):
        job, host, sessions = make_job(tmp_path, clock=fakes.Clock(start=clock.now - age * DAY))
        host.databases = [database]
        job.run()
    return clock


def test_retention_after_a_dump_keeps_the_newest_n(tmp_path):
    clock = _seed(tmp_path, [10, 9, 8, 7])
    job, host, sessions = make_job(tmp_path, clock=clock, retention_count=2)
    result = job.run()
    units = layout.list_units(str(tmp_path / 'dumps' / 'appdb'))
    assert len(units) == 2 and units[0]['path'] == result['dumps'][0]['path']
    assert len(result['pruned']) == 3


def test_retention_never_deletes_the_newest_good_dump(tmp_path):
    clock = _seed(tmp_path, [30, 20, 10])
    job, host, sessions = make_job(tmp_path, clock=clock, retention_max_age='1d')
    pruned = job.prune()
    units = layout.list_units(str(tmp_path / 'dumps' / 'appdb'))
    assert len(pruned) == 2 and len(units) == 1
    assert units[0]['finished_epoch'] < clock.now - 9 * DAY  # the newest one, although too old


def test_a_dump_held_by_a_restore_is_not_pruned(tmp_path):
    clock = _seed(tmp_path, [30, 20])
    oldest = layout.list_units(str(tmp_path / 'dumps' / 'appdb'))[-1]
    job, host, sessions = make_job(tmp_path, clock=clock, retention_count=1)
    with open(os.path.join(oldest['path'], layout.MANIFEST)) as guard:
        fcntl.flock(guard, fcntl.LOCK_SH)
        assert job.prune() == []
    assert job.prune() == [oldest['path']]


def test_check_mode_plans_without_writing(tmp_path):
    clock = _seed(tmp_path, [30, 20, 10])
    before = fakes.tree(str(tmp_path))
    host = fakes.FakeHost(databases=['appdb', 'Reports \u00dc'])
    job, host, sessions = make_job(tmp_path, host=host, clock=clock, retention_count=2)
    plan = job.plan()
    assert fakes.tree(str(tmp_path)) == before
    assert sessions.made == [] and host.argvs('pg_dumpall') == [] and host.argvs('gpg') == []
    assert [d['database'] for d in plan['would_dump']] == ['appdb', 'Reports \u00dc']
    assert plan['would_dump'][1]['path'].startswith(str(tmp_path / 'dumps' / 'Reports%20%C3%9C'))
    assert '--snapshot=<snapshot>' in plan['would_dump'][0]['command']
    # with the new dump, 2 kept: the two oldest would go
    oldest = [u['path'] for u in layout.list_units(str(tmp_path / 'dumps' / 'appdb'))[1:]]
    assert sorted(plan['would_prune']) == sorted(oldest)
    assert plan['compression'] == 'zstd'


def test_named_databases_must_exist(tmp_path):
    job, host, sessions = make_job(tmp_path, databases=['appdb', 'nope'])
    with pytest.raises(EngineError) as err:
        job.plan()
    assert 'nope' in err.value.msg


def test_pg_dump_older_than_the_server_is_refused(tmp_path):
    job, host, sessions = make_job(tmp_path, host=fakes.FakeHost(pg_dump_version='15.20', server_version_num=170002))
    with pytest.raises(EngineError) as err:
        job.plan()
    assert 'pg_dump 15 cannot dump a PostgreSQL 17 server' in err.value.msg


def test_pg15_gets_gzip_and_zstd_is_refused_before_anything_runs(tmp_path):
    host = fakes.FakeHost(pg_dump_version='15.20', server_version_num=150020)
    job, host, sessions = make_job(tmp_path, host=host)
    assert job.plan()['would_dump'][0]['command'][4] == '--compress=1'
    job, host, sessions = make_job(tmp_path, host=fakes.FakeHost(pg_dump_version='15.20', server_version_num=150020),
                                   compression='zstd')
    with pytest.raises(EngineError):
        job.run()
    assert not os.path.exists(str(tmp_path / 'dumps'))


def test_extra_options_are_checked_against_the_installed_pg_dump(tmp_path):
    job, host, sessions = make_job(tmp_path, extra_options=['--no-comments', '--exclude-schema=audit'])
    job.run()
    (argv,) = [a for a in host.argvs('pg_dump') if any(x.startswith('--file=') for x in a)]
    assert argv.index('--no-comments') < argv.index("--dbname=dbname='appdb'")
    job, host, sessions = make_job(tmp_path, extra_options=['--inserts-everything'])
    with pytest.raises(EngineError):
        job.run()


def test_plain_format_is_validated_by_its_trailer(tmp_path):
    job, host, sessions = make_job(tmp_path, fmt='plain')
    job.run()
    manifest = only_unit(tmp_path)['manifest']
    assert manifest['dump_path'] == 'appdb.sql'
    assert all(t['data_in_dump'] for t in manifest['tables'] if t['kind'] == 'table')
    assert host.argvs('pg_restore') == []


def test_database_names_map_to_safe_directories(tmp_path):
    host = fakes.FakeHost(databases=['Reports \u00dc', '../etc', '.hidden'])
    job, host, sessions = make_job(tmp_path, host=host)
    result = job.run()
    assert result['failed'] == []
    names = sorted(os.listdir(str(tmp_path / 'dumps')))
    assert names == ['%2E%2E%2Fetc', '%2Ehidden', layout.LOCK_FILE, 'Reports%20%C3%9C']
    assert set(layout.database_dirs(str(tmp_path / 'dumps'))) == {'Reports \u00dc', '../etc', '.hidden'}


def test_missing_parents_of_the_destination_stay_reachable(tmp_path):
    chowned = []
    host = fakes.FakeHost()
    job = engine.DumpJob(host.runner(), str(tmp_path / 'a' / 'b' / 'dumps'), sessions=fakes.Sessions(),
                         owner=chowned.append, clock=fakes.Clock())
    job.run()
    assert stat.S_IMODE(os.stat(str(tmp_path / 'a')).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(str(tmp_path / 'a' / 'b')).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(str(tmp_path / 'a' / 'b' / 'dumps')).st_mode) == 0o700
    assert str(tmp_path / 'a' / 'b' / 'dumps') in chowned and str(tmp_path / 'a') not in chowned


def test_an_os_error_while_finishing_a_dump_fails_that_database_only(tmp_path, monkeypatch):
    host = fakes.FakeHost(databases=['a', 'b'])
    job, host, sessions = make_job(tmp_path, host=host)
    real = layout.describe_files

    def full_disk(unit_dir, relpaths, role):
        if '/a/' in unit_dir:
            raise OSError(errno.ENOSPC, 'No space left on device', os.path.join(unit_dir, 'manifest.json'))
        return real(unit_dir, relpaths, role)
    monkeypatch.setattr(layout, 'describe_files', full_disk)
    result = job.run()
    assert [d['database'] for d in result['dumps']] == ['b'] and [f['database'] for f in result['failed']] == ['a']
    assert 'No space left on device' in result['failed'][0]['error'] and 'free space' in job.errors[0].hint
    assert os.listdir(str(tmp_path / 'dumps' / 'a')) == []


def test_a_destination_that_cannot_be_created_is_an_engine_error(tmp_path, monkeypatch):
    job, host, sessions = make_job(tmp_path)

    def denied(path, *args):
        raise OSError(errno.EACCES, 'Permission denied', path)
    monkeypatch.setattr(engine.os, 'mkdir', denied)
    with pytest.raises(EngineError) as err:
        job.run()
    assert 'Permission denied' in err.value.msg and 'postgres' in err.value.hint


@pytest.mark.parametrize('extra', [['--schema-only'], ['--exclude-table=public.orders'], ['--exclude-schema=audit']])
def test_a_partial_dump_is_marked_and_never_pushes_out_the_last_complete_one(tmp_path, extra):
    clock = _seed(tmp_path, [10, 5])
    complete = layout.list_units(str(tmp_path / 'dumps' / 'appdb'))[0]
    assert complete['partial'] is False and complete['manifest']['partial_reasons'] == []
    job, host, sessions = make_job(tmp_path, clock=clock, retention_count=1, extra_options=extra)
    help_text = fakes.HELP_TEXT + '  -s, --schema-only            dump only the schema, no data\n' \
        '  -T, --exclude-table=PATTERN  do NOT dump the specified table(s)\n'
    host.when(lambda argv: os.path.basename(argv[0]) == 'pg_dump' and '--help' in argv,
              lambda argv, env, data: (0, help_text, ''))
    plan = job.plan()
    assert plan['partial'] is True and complete['path'] not in plan['would_prune']
    result = job.run()
    (dump,) = result['dumps']
    assert dump['partial'] is True and dump['partial_reasons'][0].startswith(extra[0] + ': ')
    manifest = json.loads(open(dump['manifest']).read())
    assert manifest['partial'] is True and manifest['partial_reasons'] == dump['partial_reasons']
    kept = [u['path'] for u in layout.list_units(str(tmp_path / 'dumps' / 'appdb'))]
    # the older complete dump went (count 1), the newest complete one stays next to the partial one
    assert kept == [dump['path'], complete['path']] and len(result['pruned']) == 1


def test_a_calendar_policy_replaces_the_count(tmp_path):
    # one dump a day for 6 days, then today's: {daily: 3} keeps today's and the two days before
    clock = _seed(tmp_path, [6, 5, 4, 3, 2, 1])
    job, host, sessions = make_job(tmp_path, clock=clock, retention_count=1, retention_policy={'daily': 3})
    result = job.run()
    units = layout.list_units(str(tmp_path / 'dumps' / 'appdb'))
    assert len(units) == 3 and len(result['pruned']) == 4
    assert units[0]['path'] == result['dumps'][0]['path']
    assert all(u['finished_epoch'] >= clock.now - 2 * DAY - 60 for u in units)


def test_a_bad_calendar_policy_is_refused_before_any_dump(tmp_path):
    with pytest.raises(EngineError, match='unknown retention policy keys: daly'):
        make_job(tmp_path, retention_policy={'daly': 3})
    assert not (tmp_path / 'dumps').exists() or os.listdir(str(tmp_path / 'dumps')) == []
