# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup restore-test` and `pgops-backup heartbeat`: settings from a drill file and flags,
the table or JSON on stdout, the exit code. The Runner the commands build runs the fake host."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli
from ansible_collections.pgops.backup.plugins.module_utils import cli_drill
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill_checks import HEARTBEAT_WRITE_SQL
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import restore_drill_fakes as fakes

ORDERS = 'SELECT count(*) FROM orders'


@pytest.fixture
def host(monkeypatch):
    fake = fakes.DrillHost()

    def runner(run_as=None, stream=None, **kwargs):
        return Runner(run=fake, which=fake.which, run_as=run_as)
    monkeypatch.setattr(cli_drill, 'Runner', runner)
    monkeypatch.setattr(cli_drill, 'progress_printer', lambda: None)
    return fake


def main(tmp_path, *argv):
    return cli.main(['--record-dir', str(tmp_path / 'records'), '--run-as', 'postgres'] + list(argv))


def test_a_passing_drill_prints_the_table_and_exits_0(host, tmp_path, capsys):
    host.queries[ORDERS] = (0, fakes.rows(['1000']))
    rc = main(tmp_path, 'restore-test', '--source', 'pgbackrest', '--stanza', 'main',
              '--sql-check', 'orders', ORDERS, '1000', '--sql-database', 'appdb')
    out, err = capsys.readouterr()
    assert rc == 0
    assert out.startswith('Restore drill pgbackrest on ') and ': PASSED\n' in out
    assert 'sql:orders' in out and 'restore drill pgbackrest passed' in err
    data = json.loads((tmp_path / 'records' / 'restore_test-pgbackrest.json').read_text())
    assert data['status'] == 'ok'


def test_a_failing_drill_exits_1_and_json_holds_the_report(host, tmp_path, capsys):
    host.queries[ORDERS] = (0, fakes.rows(['1000']))
    rc = main(tmp_path, '--json', 'restore-test', '--source', 'pgbackrest', '--stanza', 'main', '--name', 'weekly',
              '--sql-check', 'orders', ORDERS, '999')
    out, err = capsys.readouterr()
    assert rc == 1
    report = json.loads(out)
    assert report['status'] == 'failed' and report['failed_checks'] == ['sql:orders'] and report['name'] == 'weekly'
    assert "FAILED: restore drill weekly failed: sql:orders: expected '999', got '1000'" in err
    assert (tmp_path / 'records' / 'restore_test-weekly.json').exists()


def test_the_drill_file_gives_the_settings_and_flags_win(host, tmp_path, capsys):
    drill_file = tmp_path / 'drill.json'
    drill_file.write_text(json.dumps({
        'name': 'weekly', 'source': 'pgbackrest', 'stanza': 'main', 'heartbeat': 'required', 'amcheck': False,
        'sql_checks': [{'name': 'orders', 'query': ORDERS, 'expected': 1000, 'database': 'appdb'}]}))
    host.queries[ORDERS] = (0, fakes.rows(['1000']))
    rc = main(tmp_path, 'restore-test', '--drill-file', str(drill_file), '--amcheck', '--no-checksums')
    assert rc == 0
    assert host.ran('pg_amcheck') and host.ran('pg_checksums') == []
    data = json.loads((tmp_path / 'records' / 'restore_test-weekly.json').read_text())
    assert data['settings']['heartbeat'] == 'required' and data['settings']['sql_checks'] == ['orders']


def test_a_bad_drill_file_exits_2(host, tmp_path, capsys):
    drill_file = tmp_path / 'drill.json'
    drill_file.write_text(json.dumps({'source': 'pgbackrest', 'stanza': 'main', 'passphrase': 'x'}))
    assert main(tmp_path, 'restore-test', '--drill-file', str(drill_file)) == 2
    assert 'unknown keys: passphrase' in capsys.readouterr()[1]


def test_plan_changes_nothing(host, tmp_path, capsys):
    assert main(tmp_path, 'restore-test', '--source', 'pgbackrest', '--stanza', 'main', '--plan') == 0
    out = capsys.readouterr()[0]
    assert '1. restore backup set %s of stanza main' % fakes.NEWEST in out
    assert fakes.mutating(host) == []


def test_remove_kept(host, tmp_path, capsys):
    host.queries[ORDERS] = (0, fakes.rows(['1']))
    assert main(tmp_path, 'restore-test', '--source', 'pgbackrest', '--stanza', 'main', '--keep-failed',
                '--sql-check', 'orders', ORDERS, '2') == 1
    assert main(tmp_path, 'restore-test', '--source', 'pgbackrest', '--stanza', 'main', '--remove-kept') == 0
    assert 'scratch instance drill-pgbackrest removed' in capsys.readouterr()[1]


def test_heartbeat_upserts_the_row_on_a_primary(host, tmp_path, capsys):
    written = []

    def psql(argv, data):
        sql = argv[argv.index('-c') + 1]
        if sql == 'SELECT pg_is_in_recovery()':
            return 0, fakes.rows(['f']), ''
        written.append((argv[argv.index('-p') + 1], argv[argv.index('-d') + 1], sql))
        return 0, fakes.rows(['1795260000.5']), ''
    host._psql = psql
    assert main(tmp_path, 'heartbeat', '--port', '5432', '--database', 'ops') == 0
    (port, db, sql), = written
    assert port == '5432' and db == "dbname='ops'"
    assert sql.startswith(HEARTBEAT_WRITE_SQL.split('%s', maxsplit=1)[0]) and 'ON CONFLICT (id) DO UPDATE' in sql
    data = json.loads((tmp_path / 'records' / 'heartbeat.json').read_text())
    assert data['status'] == 'ok' and data['beat_epoch'] == 1795260000.5


def test_heartbeat_skips_a_standby(host, tmp_path, capsys):
    host._psql = lambda argv, data: (0, fakes.rows(['t']), '')
    assert main(tmp_path, 'heartbeat') == 0
    assert 'is a standby' in capsys.readouterr()[1]
    assert json.loads((tmp_path / 'records' / 'heartbeat.json').read_text())['status'] == 'skipped'


def test_heartbeat_failure_exits_1(host, tmp_path, capsys):
    host._psql = lambda argv, data: (2, '', 'psql: error: connection refused\n')
    assert main(tmp_path, 'heartbeat') == 1
    assert json.loads((tmp_path / 'records' / 'heartbeat.json').read_text())['status'] == 'failed'


def test_scratch_reserve_flag_and_drill_file_key(host, tmp_path, capsys):
    rc = main(tmp_path, 'restore-test', '--source', 'pgbackrest', '--stanza', 'main', '--scratch-reserve', '95%')
    out, err = capsys.readouterr()
    assert rc == 1 and 'below the reserve of' in out + err and fakes.mutating(host) == []
    path = tmp_path / 'drill.json'
    path.write_text(json.dumps({'source': 'pgbackrest', 'stanza': 'main', 'scratch_reserve': '95%'}))
    rc = main(tmp_path, 'restore-test', '--drill-file', str(path), '--plan')
    out, err = capsys.readouterr()
    assert rc == 1 and 'below the reserve of' in err
    rc = main(tmp_path, 'restore-test', '--drill-file', str(path), '--scratch-reserve', '0', '--plan')
    assert rc == 0
