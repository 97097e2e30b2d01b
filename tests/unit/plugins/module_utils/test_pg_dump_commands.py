# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command construction, version gating, option validation and output checks of the pg_dump engine."""

from __future__ import annotations

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import pg_dump as engine
from ansible_collections.pgops.backup.plugins.module_utils.dump_session import count_sql, quote_ident
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError, Result
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as fakes

PG15_TOC = """;
; Archive created at 2026-11-21 09:14:06 UTC
;     dbname: Reports \u00dc
;     Dumped by pg_dump version: 15.20 (Debian 15.20-0+deb12u1)
;
7; 2615 16513 SCHEMA - Sales \u00dc postgres
2; 3079 16385 EXTENSION - hstore
217; 1259 16515 TABLE Sales \u00dc Mixed Case Table postgres
216; 1259 16514 SEQUENCE Sales \u00dc Mixed Case Table_id_seq postgres
219; 1259 16526 TABLE public cache_junk postgres
220; 1259 16529 TABLE public measurements postgres
221; 1259 16532 TABLE public measurements_2025 postgres
223; 1259 16538 MATERIALIZED VIEW public mv postgres
3972; 0 0 TABLE ATTACH public measurements_2025 postgres
4127; 2613 16542 BLOB - 16542 postgres
4121; 0 16515 TABLE DATA Sales \u00dc Mixed Case Table postgres
4123; 0 16532 TABLE DATA public measurements_2025 postgres
4128; 0 0 BLOBS - BLOBS
4125; 0 16538 MATERIALIZED VIEW DATA public mv postgres
"""


@pytest.mark.parametrize('text,expected', [
    ('pg_dump (PostgreSQL) 17.12 (Debian 17.12-0+deb13u1)\n', (17, 12)),
    ('pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)', (15, 20)),
    ('pg_dump (PostgreSQL) 16beta1', (16, 0)),
    ('pg_restore (PostgreSQL) 9.6.24', (9, 6)),
])
def test_client_version_is_parsed(text, expected):
    assert engine.parse_client_version(text) == expected


def test_unreadable_version_is_an_error():
    with pytest.raises(EngineError):
        engine.parse_client_version('bash: pg_dump: command not found')


@pytest.mark.parametrize('major,argument,method,level', [
    (17, '--compress=zstd:3', 'zstd', 3),
    (16, '--compress=zstd:3', 'zstd', 3),
    (15, '--compress=1', 'gzip', 1),
    (13, '--compress=1', 'gzip', 1),
])
def test_auto_compression_is_the_fastest_sensible_for_the_version(major, argument, method, level):
    got = engine.resolve_compression('auto', None, major, 'custom')
    assert (got['argument'], got['method'], got['level']) == (argument, method, level)


@pytest.mark.parametrize('major', [10, 12, 14, 15, 16, 17, 18])
def test_default_is_never_gzip_level_9(major):
    for fmt in ('custom', 'directory'):
        got = engine.resolve_compression('auto', None, major, fmt)
        assert not (got['method'] == 'gzip' and got['level'] == 9)
        assert got['argument'] not in ('--compress=9', '--compress=gzip:9')


@pytest.mark.parametrize('method', ['lz4', 'zstd'])
def test_lz4_and_zstd_need_pg_dump_16(method):
    with pytest.raises(EngineError) as err:
        engine.resolve_compression(method, None, 15, 'custom')
    assert 'needs pg_dump 16' in err.value.msg
    assert engine.resolve_compression(method, None, 16, 'custom')['argument'].startswith('--compress=%s:' % method)


def test_compression_spelling_per_version():
    assert engine.resolve_compression('gzip', 5, 17, 'custom')['argument'] == '--compress=gzip:5'
    assert engine.resolve_compression('gzip', 5, 15, 'custom')['argument'] == '--compress=5'
    assert engine.resolve_compression('none', None, 17, 'custom')['argument'] == '--compress=none'
    assert engine.resolve_compression('none', None, 15, 'custom')['argument'] == '--compress=0'
    assert engine.resolve_compression('lz4', None, 17, 'directory')['argument'] == '--compress=lz4:1'
    assert engine.resolve_compression('zstd', 19, 17, 'custom')['argument'] == '--compress=zstd:19'
    # an explicit request is honoured, even a slow one
    assert engine.resolve_compression('auto', 6, 15, 'custom')['argument'] == '--compress=6'


@pytest.mark.parametrize('method,level', [('gzip', 0), ('gzip', 10), ('zstd', 23), ('lz4', 13), ('zstd', '3')])
def test_compression_levels_are_range_checked(method, level):
    with pytest.raises(EngineError):
        engine.resolve_compression(method, level, 17, 'custom')


def test_plain_format_is_uncompressed():
    assert engine.resolve_compression('auto', None, 17, 'plain')['argument'] is None
    with pytest.raises(EngineError):
        engine.resolve_compression('zstd', None, 17, 'plain')
    with pytest.raises(EngineError):
        engine.resolve_compression('brotli', None, 17, 'custom')


def test_help_options_are_parsed_with_their_values():
    options = engine.parse_help_options(fakes.HELP_TEXT)
    assert options['exclude-schema'] is True
    assert options['no-comments'] is False
    assert options['compress'] is True
    assert options['no-password'] is False


def test_valid_extra_options_pass():
    supported = engine.parse_help_options(fakes.HELP_TEXT)
    options = ['--no-comments', '--exclude-schema=audit', '--lock-wait-timeout=30s']
    assert engine.validate_extra_options(options, supported) == options


@pytest.mark.parametrize('option,problem', [
    ('-Z9', 'long form'),
    ('--compress=9', 'set by the job'),
    ('--file=/tmp/x', 'set by the job'),
    ('--snapshot=abc', 'set by the job'),
    ('--exclude-table-data=x', 'set by the job'),
    ('--serializable-deferrable', 'exported snapshot'),
    ('--no-such-option', 'not an option of this pg_dump'),
    ('--exclude-schema', 'takes a value'),
    ('--no-comments=yes', 'takes no value'),
    ('--bad name', 'not an option name'),
    ('; rm -rf /', 'long form'),
])
def test_invalid_extra_options_are_refused(option, problem):
    supported = engine.parse_help_options(fakes.HELP_TEXT)
    with pytest.raises(EngineError) as err:
        engine.validate_extra_options([option], supported)
    assert problem in err.value.msg


def test_every_problem_is_reported_at_once():
    with pytest.raises(EngineError) as err:
        engine.validate_extra_options(['--file=x', '--jobs=3'], {})
    assert '--file' in err.value.msg and '--jobs' in err.value.msg


def test_custom_dump_command():
    conn = engine.Connection(port=5433)
    compression = engine.resolve_compression('auto', None, 17, 'custom')
    argv = engine.dump_argv('/usr/bin/pg_dump', conn, 'appdb', '/d/appdb/.partial/appdb.dump', 'custom',
                            compression, '00000003-0000001B-1', jobs=4, exclude_table_data=['cache_*', '"Log"*'],
                            extra_options=['--no-comments'])
    assert argv == ['/usr/bin/pg_dump', '--format=custom', '--file=/d/appdb/.partial/appdb.dump',
                    '--snapshot=00000003-0000001B-1', '--compress=zstd:3',
                    '--exclude-table-data=cache_*', '--exclude-table-data="Log"*', '--no-comments',
                    '--port=5433', '--no-password', "--dbname=dbname='appdb'"]


def test_directory_dump_runs_parallel_jobs_and_custom_does_not():
    conn = engine.Connection()
    gz = engine.resolve_compression('auto', None, 15, 'directory')
    directory = engine.dump_argv('pg_dump', conn, 'db', '/x', 'directory', gz, 'snap', jobs=3)
    assert '--jobs=3' in directory and '--compress=1' in directory
    custom = engine.dump_argv('pg_dump', conn, 'db', '/x', 'custom', gz, 'snap', jobs=3)
    assert not [a for a in custom if a.startswith('--jobs')]


@pytest.mark.parametrize('name,expected', [
    ('appdb', "dbname='appdb'"),
    ('Reports \u00dc', "dbname='Reports \u00dc'"),
    ("it's", "dbname='it\\'s'"),
    ('a=b c', "dbname='a=b c'"),
    ('back\\slash', "dbname='back\\\\slash'"),
])
def test_database_names_are_passed_as_connection_strings(name, expected):
    assert engine.conninfo_dbname(name) == expected


def test_identifiers_are_always_quoted():
    assert quote_ident('Mixed Case') == '"Mixed Case"'
    assert quote_ident('with "quote"') == '"with ""quote"""'
    assert count_sql('Sales \u00dc', 'T\u00e4ble') == 'SELECT count(*) FROM ONLY "Sales \u00dc"."T\u00e4ble"'
    assert engine.quote_literal("O'Brien\\") == "E'O''Brien\\\\'"


def test_connection_never_prompts_and_passes_the_passfile_by_environment():
    conn = engine.Connection(host='/var/run/postgresql', user='backup', passfile='/etc/pgops-backup/pgpass')
    assert conn.options() == ['--host=/var/run/postgresql', '--username=backup', '--no-password']
    assert conn.env() == {'PGPASSFILE': '/etc/pgops-backup/pgpass'}


def _result(rc, stderr, argv=('pg_dump',)):
    return Result(list(argv), rc, '', stderr, 0.1)


def test_error_after_exit_0_is_a_failure():
    with pytest.raises(EngineError) as err:
        engine.check_result(_result(0, 'pg_dump: error: query failed: ERROR:  permission denied for table x\n'),
                            'pg_dump of database appdb')
    assert 'exited 0 but reported errors' in err.value.msg
    assert 'permission denied' in err.value.stderr


def test_failure_carries_rc_stderr_and_a_hint():
    with pytest.raises(EngineError) as err:
        engine.check_result(_result(1, 'pg_dump: error: could not write to file: No space left on device\n'), 'pg_dump')
    exc = err.value
    assert exc.rc == 1 and 'No space left' in exc.stderr
    assert 'full' in exc.hint
    assert exc.as_dict()['rc'] == 1


def test_warnings_are_returned_not_raised():
    stderr = 'pg_dump: warning: there are circular foreign-key constraints on this table:\npg_dump: detail: x\n'
    assert engine.check_result(_result(0, stderr), 'pg_dump') == [
        'pg_dump: warning: there are circular foreign-key constraints on this table:']


def test_psql_errors_can_be_tolerated_selectively():
    stderr = ('psql:/tmp/globals.sql:14: ERROR:  role "postgres" already exists\n'
              'psql:/tmp/globals.sql:20: ERROR:  directory "/srv/ts" does not exist\n')
    with pytest.raises(EngineError) as err:
        engine.check_result(_result(0, stderr, ['psql']), 'globals', ignore=lambda line: 'already exists' in line)
    assert 'does not exist' in err.value.msg and 'already exists' not in err.value.msg
    engine.check_result(_result(0, stderr.splitlines()[0], ['psql']), 'globals', ignore=lambda l: 'already exists' in l)


def test_toc_is_matched_by_oid():
    toc = engine.parse_toc(PG15_TOC)
    assert toc['tables'] == {16515, 16526, 16529, 16532, 16538}
    assert toc['table_data'] == {16515, 16532, 16538}
    assert toc['large_objects'] is True
    assert 16526 not in toc['table_data']  # cache_junk: --exclude-table-data


def test_pg17_toc_with_blob_metadata():
    toc = engine.parse_toc(fakes.toc_for(fakes.DEFAULT_TABLES, large_objects=True))
    assert toc['large_objects'] is True
    toc = engine.parse_toc(fakes.toc_for(fakes.DEFAULT_TABLES))
    assert toc['large_objects'] is False


def test_an_empty_database_is_a_dump_but_no_header_is_not():
    toc = engine.parse_toc(';\n; Archive created at 2026-11-21 09:14:06 UTC\n;     dbname: postgres\n;\n')
    assert toc['entries'] == 0 and toc['table_data'] == set()
    with pytest.raises(EngineError):
        engine.parse_toc('')
    with pytest.raises(EngineError):
        engine.parse_toc('pg_restore: error: input file does not appear to be a valid archive\n')


def test_trailer_detection(tmp_path):
    good = tmp_path / 'g.sql'
    good.write_text(fakes.GLOBALS_SQL)
    empty = tmp_path / 'e.sql'
    empty.write_text('')
    truncated = tmp_path / 't.sql'
    truncated.write_text(fakes.GLOBALS_SQL[:40])
    assert engine.has_trailer(str(good), engine.GLOBALS_COMPLETE)
    assert not engine.has_trailer(str(empty), engine.GLOBALS_COMPLETE)
    assert not engine.has_trailer(str(truncated), engine.GLOBALS_COMPLETE)


def test_plain_dump_scan_matches_names_and_needs_the_trailer(tmp_path):
    path = tmp_path / 'x.sql'
    lines = ['--\n-- Name: Mixed Case Table; Type: TABLE; Schema: Sales \u00dc; Owner: postgres\n',
             '-- Name: cache_junk; Type: TABLE; Schema: public; Owner: postgres\n',
             '-- Data for Name: Mixed Case Table; Type: TABLE DATA; Schema: Sales \u00dc; Owner: postgres\n',
             '-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\n']
    path.write_text(''.join(lines), encoding='utf-8')
    with pytest.raises(EngineError):
        engine.scan_plain(str(path), fakes.DEFAULT_TABLES)
    path.write_text(''.join(lines) + '--\n-- PostgreSQL database dump complete\n--\n', encoding='utf-8')
    toc = engine.scan_plain(str(path), fakes.DEFAULT_TABLES)
    assert toc['tables'] == {16515, 16523}
    assert toc['table_data'] == {16515}
    assert toc['large_objects'] is True
