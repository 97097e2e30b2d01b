# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drills from pg_dump: the newest good dump set, restored into an empty initdb cluster,
proven by exact row counts against the manifests.

The dumps are real files written by the real DumpJob (pg_dump itself faked by pg_dump_fakes); the
drill's host is restore_drill_fakes.DrillHost: only the process boundary is faked.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest as layout
from ansible_collections.pgops.backup.plugins.module_utils import pg_dump as engine
from ansible_collections.pgops.backup.plugins.module_utils.records import JobRecord
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill import Drill, DrillFailed, Settings
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill_scratch import relocate_tablespaces
from ansible_collections.pgops.backup.plugins.module_utils.restore_drill_sources import find_dump_set
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import pg_dump_fakes as dump_fakes
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils import restore_drill_fakes as fakes

SECRET = 'drill-test-passphrase-4711'
KIND = {'table': 'r', 'partitioned table': 'p', 'materialized view': 'm'}


class Env(object):
    """Dumps of the job `nightly` in tmp/dumps, its record in tmp/records, a scratch base directory."""

    def __init__(self, tmp_path, databases=('appdb',), passphrase=None, job='nightly', globals_sql=None):
        self.tmp = tmp_path
        self.dest = str(tmp_path / 'dumps')
        self.records = str(tmp_path / 'records')
        self.jobs = str(tmp_path / 'etc')
        self.base = str(tmp_path / 'scratch')
        os.makedirs(self.base)
        os.makedirs(self.jobs)
        source = dump_fakes.FakeHost(databases=databases)
        if globals_sql is not None:

            def dumpall(argv, env, data):
                with open(dump_fakes.option(argv, 'file'), 'w') as handle:
                    handle.write(globals_sql)
                return 0, '', ''
            source.do_pg_dumpall = dumpall
        result = engine.DumpJob(source.runner(), self.dest, databases=list(databases), sessions=dump_fakes.Sessions(),
                                owner=dump_fakes.no_owner, clock=dump_fakes.Clock(), job=job, passphrase=passphrase).run()
        JobRecord('pg-dump-%s' % job, self.records, dump_job=job, destination=self.dest, mode='dump').finish(
            'ok', databases=[d['database'] for d in result['dumps']])
        settings = {'job': job, 'destination': self.dest}
        if passphrase:
            secret = str(tmp_path / 'etc' / 'pg-dump.passphrase')
            with open(secret, 'w') as handle:
                handle.write(passphrase + '\n')
            os.chmod(secret, 0o600)
            settings['passphrase_file'] = secret
        with open(os.path.join(self.jobs, 'pg-dump-%s.json' % job), 'w') as handle:
            json.dump(settings, handle)
        self.host = fakes.DrillHost()
        self.host.databases = ['postgres']
        for database in databases:
            self.host.restored_tables[database] = [
                (t['oid'], t['schema'], t['name'], KIND[t['kind']], t['rows']) for t in dump_fakes.DEFAULT_TABLES]

    @property
    def scratch(self):
        return os.path.join(self.base, 'drill-pg_dump')

    def unit(self, database='appdb'):
        return layout.list_units(os.path.join(self.dest, layout.encode_name(database)))[0]['path']

    def drill(self, **settings):
        values = dict(source='pg_dump', scratch_base_dir=self.base)
        values.update(settings)
        clock = fakes.Clock()
        return Drill(self.host.runner(run_as=None), Settings(**values), record_dir=self.records, job_dir=self.jobs,
                     clock=clock, sleep=clock.sleep, hostname='db1.example.com')

    def run(self, **settings):
        return self.drill(**settings).run()

    def fail(self, **settings):
        with pytest.raises(DrillFailed) as err:
            self.run(**settings)
        return err.value


def by_label(report):
    return dict((('%s %s' % (c['name'], c['database'])) if c['database'] else c['name'], c) for c in report['checks'])


def test_the_newest_dump_set_is_restored_into_an_empty_cluster_and_every_count_matches(tmp_path):
    env = Env(tmp_path)
    report = env.run()
    assert report['status'] == 'ok', report['error']
    host = env.host
    (initdb,) = host.argvs('initdb')
    assert initdb[initdb.index('-D') + 1] == env.scratch and '--data-checksums' in initdb
    conf = host.files[env.scratch + '/postgresql.conf']
    assert conf.startswith('# initdb\n') and 'archive_mode = off' in conf and "listen_addresses = ''" in conf
    assert 'port = 5433' in conf
    # globals first, into template1 (the maintenance database), then the database
    (restore,) = host.argvs('pg_restore')
    assert os.path.basename(restore[0]) == 'pg_restore' and '--port=5433' in restore
    assert restore[-1] == os.path.join(env.unit(), 'appdb.dump')
    assert host.globals_sql[0][0] == 'template1' and 'CREATE ROLE app;' in host.globals_sql[0][1]
    order = [os.path.basename(c['argv'][0]) + ('-f' if '-f' in c['argv'] else '') for c in host.calls]
    assert order.index('psql-f') < order.index('pg_restore')
    checks = by_label(report)
    assert set(checks) == {'source', 'restore appdb', 'row_counts appdb', 'isolation', 'heartbeat', 'amcheck appdb',
                           'full_read appdb', 'checksums'}
    assert checks['row_counts appdb']['detail'].startswith('5 tables, 1108 rows: exactly the counts of the manifest')
    assert checks['heartbeat']['status'] == 'skip' and 'not in the dump set' in checks['heartbeat']['detail']
    assert report['dump_set']['job'] == 'nightly' and report['dump_set']['databases'] == ['appdb']
    assert not os.listdir(env.base), 'work files are removed'
    assert host.ran('rm', '-rf', env.scratch)


def test_a_truncated_dump_file_fails_the_restore_and_names_the_file(tmp_path):
    env = Env(tmp_path)
    path = os.path.join(env.unit(), 'appdb.dump')
    with open(path, 'rb+') as handle:
        handle.truncate(10)
    err = env.fail()
    assert err.report['failed_checks'] == ['restore appdb']
    assert 'restore appdb: the dump at %s does not match its manifest: appdb.dump has 10 bytes' % env.unit() in err.msg
    assert env.host.argvs('pg_restore') == [] and 'take a new dump' in err.hint


def test_rows_that_changed_after_the_manifest_was_taken_fail_the_counts(tmp_path):
    env = Env(tmp_path)
    manifest_path = os.path.join(env.unit(), 'manifest.json')
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    for table in manifest['tables']:
        if table['name'] == 'measurements_2026':
            table['rows'] = 401
    with open(manifest_path, 'w') as handle:
        json.dump(manifest, handle)
    err = env.fail()
    assert err.report['failed_checks'] == ['row_counts appdb']
    assert ('row_counts appdb: 1 table(s) differ from the manifest of %s: public.measurements_2026: row count differs '
            '(manifest 401, restored 400)' % manifest['finished_at']) in err.msg
    assert by_label(err.report)['restore appdb']['status'] == 'pass'


def test_the_heartbeat_in_a_dumped_database_is_measured_against_the_dump_snapshot(tmp_path):
    env = Env(tmp_path, databases=('appdb', 'postgres'))
    started = json.load(open(os.path.join(env.unit('postgres'), 'manifest.json')))['started_epoch']
    env.host.heartbeat = {'postgres': (started - 30.0, 'db1.example.com')}
    report = env.run()
    check = by_label(report)['heartbeat']
    assert check['status'] == 'pass' and check['lag_seconds'] == 30.0 and 'the dump snapshot of postgres' in check['detail']
    # `postgres` exists in the empty cluster: dropped from template1 and restored like the others
    drops = [s for s in env.host.sql if s[2].startswith('DROP DATABASE')]
    assert drops and drops[0][1] == 'template1' and '"postgres"' in drops[0][2]


def test_encrypted_dumps_use_the_jobs_passphrase_file(tmp_path):
    env = Env(tmp_path, passphrase=SECRET)
    report = env.run()
    assert report['status'] == 'ok', report['error']
    assert 'encrypted' in by_label(report)['restore appdb']['detail']
    assert SECRET not in json.dumps(report)
    os.chmod(os.path.join(env.jobs, 'pg-dump.passphrase'), 0o644)
    env2 = env.drill()
    with pytest.raises(DrillFailed) as err:
        env2.run()
    assert 'is readable by others' in err.value.msg


def test_tablespaces_of_the_globals_are_created_inside_the_scratch_instance(tmp_path):
    globals_sql = ("CREATE ROLE app;\n"
                   "CREATE TABLESPACE fast OWNER postgres LOCATION '/srv/fast';\n"
                   "CREATE TABLESPACE \"Slow Disk\" OWNER app LOCATION '/srv/o''brien';\n"
                   "--\n-- PostgreSQL database cluster dump complete\n--\n")
    env = Env(tmp_path, globals_sql=globals_sql)
    report = env.run()
    sql = env.host.globals_sql[0][1]
    root = env.scratch + '.tablespaces'
    assert "CREATE TABLESPACE fast OWNER postgres LOCATION '%s/ts1';" % root in sql
    assert "CREATE TABLESPACE \"Slow Disk\" OWNER app LOCATION '%s/ts2';" % root in sql
    assert '/srv/' not in sql
    assert env.host.ran('mkdir', '-p', root + '/ts1')
    assert 'tablespaces created inside the scratch instance: fast, Slow Disk' in by_label(report)['restore appdb']['detail']


def test_relocate_tablespaces_keeps_everything_else():
    text, moved = relocate_tablespaces("SET x = 1;\nCREATE TABLESPACE t OWNER o LOCATION '/a';\n", '/s')
    assert text == "SET x = 1;\nCREATE TABLESPACE t OWNER o LOCATION '/s/ts1';\n"
    assert moved == [('t', '/a', '/s/ts1')]


def test_without_a_job_record_nothing_is_guessed(tmp_path):
    env = Env(tmp_path)
    os.unlink(os.path.join(env.records, 'pg-dump-nightly.json'))
    os.unlink(os.path.join(env.jobs, 'pg-dump-nightly.json'))
    err = env.fail()
    assert err.report['failed_checks'] == ['source'] and 'no pg_dump job record in %s' % env.records in err.msg
    err = env.fail(dump_job='weekly')
    assert 'no record or job file of pg_dump job weekly' in err.msg
    report = env.run(dump_destination=env.dest)
    assert report['status'] == 'ok'


def test_the_record_of_the_last_good_run_names_the_databases(tmp_path):
    env = Env(tmp_path, databases=('appdb', 'shop'))
    found = find_dump_set(env.records, job_dir=env.jobs)
    assert found['job'] == 'nightly' and sorted(u['database'] for u in found['units']) == ['appdb', 'shop']
    JobRecord('pg-dump-nightly', env.records, dump_job='nightly', destination=env.dest, mode='dump').finish(
        'ok', databases=['appdb'])
    assert [u['database'] for u in find_dump_set(env.records, job_dir=env.jobs)['units']] == ['appdb']
    # a restore's record shares the prefix but is not a dump job
    JobRecord('pg-dump-restore-x', env.records, source='/x', database='x').finish('ok')
    assert find_dump_set(env.records, job_dir=env.jobs)['job'] == 'nightly'


def test_check_mode_plans_the_pg_dump_drill(tmp_path):
    env = Env(tmp_path)
    plan = env.drill().run(check_mode=True)
    assert plan['dump_set']['databases'] == ['appdb'] and plan['version'] == '17'
    assert plan['steps'][0].startswith('create an empty cluster with initdb in %s' % env.scratch)
    assert fakes.mutating(env.host) == []
