"""The README's example run as root (issue 12): `pgops-backup --json backup --stanza main --type incr`
runs pgBackRest as postgres, succeeds, and leaves no root-owned file where pgBackRest keeps its
repository, spool, logs and locks (a root-owned file there breaks the postgres-run archive_command)."""

import json

from testhosts import molecule_hosts

testinfra_hosts = molecule_hosts()

PGBACKREST_PATHS = ('/var/lib/pgbackrest', '/var/spool/pgbackrest', '/var/log/pgbackrest', '/tmp/pgbackrest')


def root_owned(host):
    existing = [p for p in PGBACKREST_PATHS if host.file(p).exists]
    assert existing, 'none of %s exists' % (PGBACKREST_PATHS,)
    return host.check_output('find %s -user root -printf "%%p\\n"' % ' '.join(existing)).splitlines()


def test_readme_backup_example_as_root_succeeds_as_postgres(host):
    assert host.check_output('id -u') == '0'
    cmd = host.run('pgops-backup --json backup --stanza main --type incr')
    assert cmd.rc == 0, cmd.stderr
    record = json.loads(cmd.stdout)
    assert record['status'] == 'ok' and record['type'] == 'incr', record
    assert 'unable to find primary cluster' not in cmd.stderr
    assert root_owned(host) == []


def test_check_and_info_as_root_leave_no_root_owned_file(host):
    for args in ('--quiet check --stanza main', '--quiet --json info --stanza main'):
        cmd = host.run('pgops-backup %s' % args)
        assert cmd.rc == 0, (args, cmd.stderr)
    assert root_owned(host) == []


def test_run_as_root_and_a_bad_stanza_name_are_refused_before_anything_runs(host):
    cmd = host.run('pgops-backup --run-as root backup --stanza main')
    assert cmd.rc == 2 and "refusing to run pgBackRest and the PostgreSQL programs as 'root'" in cmd.stderr
    cmd = host.run("pgops-backup backup --stanza \"ma'in\"")
    assert cmd.rc == 2 and 'invalid stanza name' in cmd.stderr
    assert root_owned(host) == []
