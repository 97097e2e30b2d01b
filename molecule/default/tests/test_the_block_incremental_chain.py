"""Block incremental (pgBackRest 2.46+), after the other tests of the scenario (pytest runs the files in
name order; these backups would otherwise expire the ones the site runbook tests look for): on Debian 13
an incremental after a hot-set update stores the changed blocks only, on Debian 12 (2.45) it stays
file-level and the role said so; on both a restore drill of that incremental returns every row exactly."""

import json
import os

from testhosts import molecule_hosts, psql, run_log

testinfra_hosts = molecule_hosts()

STANZA = 'main'


BLOCK_TABLE = 'pgops_block_check'
ROWS_SQL = "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM %s" % BLOCK_TABLE


def pgbackrest_version(host):
    return tuple(int(part) for part in host.check_output('pgbackrest version').split()[1].split('.')[:2])


def info(host):
    out = host.check_output('runuser -u postgres -- pgbackrest --stanza=%s --output=json info', STANZA)
    return json.loads(out)[0]


def backup(host, kind):
    out = host.check_output('pgops-backup --quiet --json backup --stanza %s --type %s', STANZA, kind)
    return json.loads(out)['label']


def test_block_incremental_is_on_where_the_installed_pgbackrest_has_it(host):
    conf = host.file('/etc/pgbackrest/pgbackrest.conf').content_string
    if pgbackrest_version(host) >= (2, 46):
        assert 'repo1-block=y' in conf and 'repo1-bundle=y' in conf
    else:  # Debian 12's 2.45: file-level incrementals, and the role said so
        assert 'repo1-block' not in conf and 'repo1-bundle' not in conf
        said = ' '.join(run_log('converge').split())
        assert 'on %s: file-level incrementals (block incremental needs 2.46 or later' % host.backend.hostname in said


def test_an_incremental_after_a_hot_set_update_restores_exactly(host):
    # ~30 MB of incompressible rows, frozen before the full backup so that only the update changes pages.
    psql(host, 'DROP TABLE IF EXISTS %s; CREATE TABLE %s (id int PRIMARY KEY, v text); '
               'INSERT INTO %s SELECT i, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 300000) i'
               % (BLOCK_TABLE, BLOCK_TABLE, BLOCK_TABLE))
    psql(host, 'VACUUM (FREEZE, ANALYZE) %s' % BLOCK_TABLE)
    psql(host, 'CHECKPOINT')
    table_bytes = int(psql(host, "SELECT pg_relation_size('%s')" % BLOCK_TABLE))
    full = backup(host, 'full')
    psql(host, 'UPDATE %s SET v = upper(v) WHERE id <= 3000' % BLOCK_TABLE)  # a hot set: 1% of the rows
    psql(host, 'CHECKPOINT')
    incr = backup(host, 'incr')
    sets = dict((b['label'], b['info']['repository']) for b in info(host)['backup'])
    repository = sets[incr]
    # What the closing notes quote: table size, and what the full and the incremental stored.
    with open(os.path.join(os.environ['PGOPS_LOG_DIR'], 'default-block-%s.json' % host.backend.hostname), 'w') as out:
        json.dump({'pgbackrest': '.'.join(map(str, pgbackrest_version(host))), 'table_bytes': table_bytes,
                   'full_repo_delta': sets[full]['delta'], 'incr_repo_delta': repository['delta'],
                   'incr_block_map': 'size-map' in repository}, out)
    if pgbackrest_version(host) >= (2, 46):
        # Block incremental: a block map, and far less than the changed file itself.
        assert 'size-map' in repository, repository
        assert repository['delta'] < table_bytes * 0.1, (repository, table_bytes)
    expected = psql(host, ROWS_SQL)
    drill = host.run('pgops-backup --quiet --json restore-test --source pgbackrest --stanza %s --set %s '
                     '--name block-chain --heartbeat off --sql-check rows %s %s',
                     STANZA, incr, ROWS_SQL, expected)
    assert drill.rc == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
    report = json.loads(drill.stdout)
    assert report['status'] == 'ok' and report['backup_label'] == incr, report
    assert dict((c['name'], c['status']) for c in report['checks'])['sql:rows'] == 'pass', report['checks']
