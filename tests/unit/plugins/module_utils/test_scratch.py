# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scratch instances (the restore-elsewhere building block shared with restore drills): never
archiving, own port and socket, configuration from the backup's pg_control, and removal that
deletes nothing it did not create."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import PgBackRest
from ansible_collections.pgops.backup.plugins.module_utils.pgserver import GOAL_PAUSED, GOAL_PROMOTED
from ansible_collections.pgops.backup.plugins.module_utils.pitr import Target
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.plugins.module_utils import scratch
from ansible_collections.pgops.backup.plugins.module_utils.scratch import GIB, ScratchInstance, list_scratch
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.pitr_fakes import PitrHost, fixture, paused_at
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.restore_drill_fakes import DrillHost
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.test_pitr_preflight import Clock

BASE = '/var/lib/postgresql/pgops-scratch'


def instance(host=None, name='drill', **kwargs):
    host = host or PitrHost()
    clock = Clock()
    inst = ScratchInstance(host.runner(), PgBackRest(host.runner(), stanza='main'), '17', name=name, clock=clock,
                           sleep=clock.sleep, **kwargs)
    return inst, host


def test_restore_command_line_never_archives_and_never_uses_the_source_spool():
    inst, host = instance()
    inst.port = 5433
    argv = inst.restore_argv(Target('time', '2026-11-21 09:29:42+00'), backup_set='20261121-092940F',
                             action='pause')
    assert argv[:2] == ['/usr/bin/pgbackrest', '--stanza=main'] and argv[-1] == 'restore'
    assert '--pg1-path=%s/drill' % BASE in argv
    assert '--archive-mode=off' in argv
    assert '--tablespace-map-all=%s/drill.tablespaces' % BASE in argv
    assert '--set=20261121-092940F' in argv and '--target-action=pause' in argv
    assert ('--recovery-option=restore_command=/usr/bin/pgbackrest --stanza=main --pg1-path=%s/drill '
            '--no-archive-async archive-get %%f "%%p"' % BASE) in argv


def test_config_option_is_carried_into_restore_command():
    host = PitrHost()
    inst = ScratchInstance(host.runner(), PgBackRest(host.runner(), stanza='main', config='/etc/pgbackrest/alt.conf'),
                           '17', name='x')
    assert inst.restore_command().startswith('/usr/bin/pgbackrest --config=/etc/pgbackrest/alt.conf --stanza=main')


def test_create_leaves_a_marker_first_then_restores_and_configures():
    inst, host = instance()
    inst.create(inst.restore_argv(Target('latest')), purpose='drill', source={'stanza': 'main'})
    order = [c['argv'][0].rsplit('/', 1)[-1] + ' ' + c['argv'][-1] for c in host.calls
             if c['argv'][0] in ('mkdir', 'tee') or c['argv'][-1] == 'restore']
    assert order == ['mkdir %s' % BASE, 'tee %s/drill.pgops-scratch.json' % BASE, 'mkdir %s/drill' % BASE,
                     'pgbackrest restore', 'tee %s/drill/postgresql.conf' % BASE, 'tee %s/drill/pg_hba.conf' % BASE,
                     'tee %s/drill/pg_ident.conf' % BASE]
    marker = json.loads(host.files[BASE + '/drill.pgops-scratch.json'])
    assert marker['port'] == 5433 and marker['purpose'] == 'drill' and marker['stanza'] == 'main'
    conf = host.files[BASE + '/drill/postgresql.conf']
    for line in ("archive_mode = off", "archive_command = ''", "port = 5433", "listen_addresses = ''",
                 "unix_socket_directories = '/var/run/postgresql'", "hot_standby = on", "lc_messages = 'C'",
                 "max_connections = 100", "max_worker_processes = 8", "max_locks_per_transaction = 64",
                 "cluster_name = 'pgops-scratch-drill'"):
        assert line in conf.splitlines(), line
    hba = [line for line in host.files[BASE + '/drill/pg_hba.conf'].splitlines() if not line.startswith('#')]
    assert hba == ['local all postgres peer']  # the OS user postgres on the socket, nobody else, no TCP
    assert all(c['user'] == 'postgres' for c in host.calls if c['argv'][0] in ('tee', 'mkdir'))


def test_settings_from_pg_control_win_over_defaults_and_caller_settings_win_over_both():
    host = PitrHost()
    host.controldata = fixture('controldata-17.out').replace('max_connections setting:              100',
                                                             'max_connections setting:              500')
    inst, host = instance(host, settings={'work_mem': "'64MB'"})
    inst.port = 5440
    settings = inst.configure()
    assert settings['max_connections'] == '500' and settings['work_mem'] == "'64MB'"


def test_ports_in_use_are_skipped():
    host = PitrHost()
    host.dirs['/var/run/postgresql'] += ['.s.PGSQL.5433', '.s.PGSQL.5433.lock']
    inst, host = instance(host)
    assert inst.choose_port() == 5434


def test_a_requested_port_in_use_is_refused():
    inst, host = instance(port=5432)
    with pytest.raises(EngineError) as caught:
        inst.choose_port()
    assert 'port 5432 is already used' in caught.value.msg


def test_an_existing_instance_is_not_overwritten():
    host = PitrHost()
    host.paths.add(BASE + '/drill')
    inst, host = instance(host)
    with pytest.raises(EngineError) as caught:
        inst.create(['pgbackrest', 'restore'])
    assert 'already exists' in caught.value.msg and 'state=absent' in caught.value.hint
    assert host.mutating() == []


def test_start_overrides_archiving_on_the_command_line_and_waits_for_the_goal():
    inst, host = instance()
    inst.port = 5433

    def on_start(h):
        h.server_log = fixture('server-log-time-paused-17.log')
        h.states = [None, paused_at('0/B0093D8', 1795253382285200, 2)]
    host.on_start = on_start
    inst.start()
    start = host.ran('pg_ctl', 'start')[0]['argv']
    assert start[start.index('-l') + 1] == BASE + '/drill.log' and '-W' in start
    options = start[start.index('-o') + 1]
    assert options == ("-c archive_mode=off -c port=5433 -c unix_socket_directories=/var/run/postgresql "
                       "-c lc_messages=C -c listen_addresses='' -c hba_file=%s/drill/pg_hba.conf "
                       "-c ident_file=%s/drill/pg_ident.conf" % (BASE, BASE))
    outcome = inst.wait(GOAL_PAUSED, timeout=60)
    assert outcome['events']['stop']['xid'] == 772 and outcome['state']['paused']
    psql = [c for c in host.calls if c['argv'][0].endswith('psql')][-1]['argv']
    assert psql[1:3] == ['-h', '/var/run/postgresql'] and psql[psql.index('-p') + 1] == '5433'


@pytest.mark.parametrize('value', ['127.0.0.1', '*', "x'; rm -rf /"])
def test_a_scratch_instance_never_listens_on_tcp(value):
    with pytest.raises(EngineError) as err:
        instance(listen_addresses=value)
    assert 'never listens on TCP' in err.value.msg and repr(value) in err.value.msg
    inst, host = instance()
    inst.port = 5433
    assert "-c listen_addresses=''" in inst.server_options()


def test_promote_and_goal_promoted():
    inst, host = instance()
    inst.port = 5433
    host.on_start = lambda h: setattr(h, 'states', [paused_at('0/B0093D8', 1, 2)])
    inst.start()
    inst.wait(GOAL_PAUSED, timeout=10)
    inst.promote()
    assert inst.wait(GOAL_PROMOTED, timeout=10)['state']['in_recovery'] is False


def test_remove_deletes_only_what_it_created():
    host = PitrHost()
    host.paths |= {BASE + '/drill', BASE + '/drill.pgops-scratch.json'}
    host.files[BASE + '/drill.pgops-scratch.json'] = json.dumps({'name': 'drill', 'port': 5433})
    host.scratch_running[BASE + '/drill'] = True
    inst, host = instance(host)
    assert inst.remove() is True
    assert host.ran('pg_ctl', 'stop', '-m', 'fast')
    rm = [' '.join(c['argv']) for c in host.calls if c['argv'][0] == 'rm']
    assert rm == ['rm -rf --one-file-system -- {0}/drill {0}/drill.tablespaces {0}/drill.log'.format(BASE),
                  'rm -f -- %s/drill.pgops-scratch.json' % BASE]
    assert instance()[0].remove() is False


def test_remove_refuses_a_directory_without_marker():
    host = PitrHost()
    host.paths.add(BASE + '/drill')
    inst, host = instance(host)
    with pytest.raises(EngineError) as caught:
        inst.remove()
    assert 'has no scratch marker' in caught.value.msg
    assert not host.ran('rm')


@pytest.mark.parametrize('kwargs', [{'name': '../etc'}, {'name': 'Prod'}, {'name': ''},
                                    {'name': 'ok', 'base_dir': '/'}, {'name': 'ok', 'base_dir': 'relative/dir'},
                                    {'name': 'ok', 'base_dir': '/srv/a b'}])
def test_unsafe_names_and_directories_are_refused(kwargs):
    with pytest.raises(EngineError):
        instance(**kwargs)


def test_list_scratch_by_marker():
    host = PitrHost()
    host.dirs[BASE] = ['drill', 'drill.pgops-scratch.json', 'drill.log', 'forensics.pgops-scratch.json', 'other']
    assert list_scratch(host.runner(), BASE) == ['drill', 'forensics']


# --- the reserve on production's file systems ----------------------------------------------------------

@pytest.mark.parametrize('value,expected', [
    (None, None), ('auto', None), ('', None), ('10%', ('percent', 10.0)), ('2.5 %', ('percent', 2.5)),
    ('2G', ('bytes', 2 * GIB)), ('500MiB', ('bytes', 500 * 1024 ** 2)), (0, ('bytes', 0)), ('0', ('bytes', 0)),
    (1073741824, ('bytes', GIB)), ('1t', ('bytes', 1024 ** 4)),
])
def test_parse_reserve(value, expected):
    assert scratch.parse_reserve(value) == expected


@pytest.mark.parametrize('value', ['-1G', 'lots', '150%', '5 parsecs', True])
def test_parse_reserve_refuses_what_is_not_a_size(value):
    with pytest.raises(EngineError) as err:
        scratch.parse_reserve(value)
    assert 'scratch reserve %r' % (value if not isinstance(value, bool) else 'True',) in err.value.msg


def test_the_default_reserve_is_the_larger_of_10_percent_and_1_gib():
    assert scratch.reserve_bytes(None, 100 * GIB) == 10 * GIB
    assert scratch.reserve_bytes(None, 4 * GIB) == GIB
    assert scratch.reserve_bytes(('percent', 25.0), 100 * GIB) == 25 * GIB
    assert scratch.reserve_bytes(('bytes', 0), 100 * GIB) == 0


def drill_host():
    host = DrillHost()
    return host, host.runner()


def test_a_scratch_restore_that_would_eat_the_reserve_of_the_primary_is_refused():
    host, runner = drill_host()
    host.free = 30 * 10 ** 9  # of 270 GB: the default reserve is 27 GB
    with pytest.raises(EngineError) as err:
        scratch.check_space(runner, BASE + '/drill', 4 * 10 ** 9)
    msg = err.value.msg
    assert 'the data directory of 17/main (/var/lib/postgresql/17/main)' in msg and 'the pg_wal of 17/main' in msg
    assert 'below the reserve of 25.1 GiB (scratch reserve auto: 10% of the file system, at least 1.0 GiB)' in msg
    assert 'scratch_base_dir' in err.value.hint and 'scratch_reserve' in err.value.hint
    facts = scratch.check_space(runner, BASE + '/drill', 2 * 10 ** 9)  # leaves 28 GB: allowed
    assert facts['reserve_bytes'] == 27 * 10 ** 9 and len(facts['shared_with']) == 2
    with pytest.raises(EngineError):
        scratch.check_space(runner, BASE + '/drill', 2 * 10 ** 9, reserve=('percent', 50.0))
    assert scratch.check_space(runner, BASE + '/drill', 29 * 10 ** 9, reserve=('bytes', 0))['reserve_bytes'] == 0


def test_a_scratch_file_system_of_its_own_needs_only_the_space():
    host, runner = drill_host()
    host.free = 1 * 10 ** 9
    host.paths.add(BASE)
    host.mounts[BASE] = ('tmpfs', 8 * GIB, 6 * GIB)
    facts = scratch.check_space(runner, BASE + '/drill', 5 * GIB)
    assert facts['shared_with'] == [] and facts['reserve_bytes'] == 0 and facts['mount'] == BASE
    with pytest.raises(EngineError) as err:
        scratch.check_space(runner, BASE + '/drill', 7 * GIB)
    assert err.value.msg == ('not enough free space in %s for the scratch instance: 6.0 GiB free, about 7.0 GiB '
                             'needed' % BASE)


def test_pg_wal_is_followed_through_its_symlink():
    host, runner = drill_host()
    host.paths.add(BASE)
    host.mounts[BASE] = ('/dev/vdb', 100 * GIB, 12 * GIB)
    host.mounts['/srv/wal'] = ('/dev/vdb', 100 * GIB, 12 * GIB)  # the same device: pg_wal lives there
    host.links['/var/lib/postgresql/17/main/pg_wal'] = '/srv/wal/17/main'
    host.paths.add('/srv/wal/17/main')
    with pytest.raises(EngineError) as err:
        scratch.check_space(runner, BASE + '/drill', 4 * GIB)
    assert 'the pg_wal of 17/main (/srv/wal/17/main)' in err.value.msg and 'data directory' not in err.value.msg


def test_the_output_says_how_to_reach_stop_or_start_the_instance():
    inst, host = instance()
    inst.port = 5433
    running = inst.how_to('running')
    assert 'runuser -u postgres -- psql -h /var/run/postgresql -p 5433' in running
    assert 'pg_ctl stop -D %s/drill -m fast' % BASE in running and 'scratch-remove drill' in running
    stopped = inst.how_to('stopped')
    assert 'pg_ctl start -D %s/drill' % BASE in stopped and 'archive_mode=off' in stopped
    assert inst.describe()['access'].startswith('the OS user postgres only')
