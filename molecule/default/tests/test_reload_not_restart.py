"""Changing archive_timeout alone reloads PostgreSQL: the new value is live, the postmaster never restarted."""

import json

from testhosts import molecule_hosts, psql, run_log

testinfra_hosts = molecule_hosts()


def before(host):
    return json.loads(host.file('/root/reload-before.json').content_string)


def test_new_archive_timeout_is_live(host):
    assert before(host)['archive_timeout'] == '1min'
    assert psql(host, 'SHOW archive_timeout') == '30s'
    assert psql(host, 'SELECT count(*) FROM pg_settings WHERE pending_restart') == '0'


def test_postmaster_was_not_restarted(host):
    now = psql(host, 'SELECT extract(epoch FROM pg_postmaster_start_time())::text')
    assert now == before(host)['postmaster_start_time']


def test_side_effect_run_reloaded_and_skipped_the_restart():
    log = run_log('side_effect')
    reload_task = log.split('RUNNING HANDLER [pgops.backup.pgbackrest : Reload PostgreSQL]', 1)
    assert len(reload_task) == 2, 'the reload handler did not run'
    restart_part = log.split('RUNNING HANDLER [pgops.backup.pgbackrest : Restart PostgreSQL for restart-only settings]', 1)
    assert len(restart_part) == 2, 'the restart handler was not even considered'
    restart_block = restart_part[1].split('RUNNING HANDLER', 1)[0].split('TASK [', 1)[0]
    assert 'skipping:' in restart_block and 'changed:' not in restart_block
