# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgbackrest role's derived variables (roles/pgbackrest/vars/main.yml), rendered by Ansible's own
templating with the role's defaults: topologies, options, secrets and systemd jobs."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.pgops.backup.tests.unit.roles.pgbackrest_role_vars import trust as _trust

ROLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'roles', 'pgbackrest')
PASS = 'a-good-passphrase-0123456789'
CLUSTER = {'data_directory': '/var/lib/postgresql/17/main', 'port': 5432, 'service': 'postgresql@17-main.service'}
S3 = {'path': '/pgbackrest', 'type': 's3', 's3_bucket': 'b', 's3_endpoint': 's3.example.com', 's3_region': 'eu-1',
      's3_uri_style': 'path', 's3_key': 'AKEY0123456789', 's3_key_secret': 'SECRET-0123456789',
      'cipher_pass': 'repo2-passphrase-0123456789', 'retention_full': 4, 'schedule_incr': ''}


def _load(*path):
    with open(os.path.join(ROLE, *path)) as handle:
        return yaml.safe_load(handle)


def render(expression, host='db1', groups=None, play_hosts=None, hostvars=None, **overrides):
    variables = {}
    variables.update(_trust(_load('defaults', 'main.yml')))
    variables.update(_trust(_load('vars', 'main.yml')))
    variables.update({
        'inventory_hostname': host,
        'groups': groups or {'all': [host]},
        'ansible_play_hosts': play_hosts or [host],
        'hostvars': hostvars or {},
        'ansible_facts': {'processor_vcpus': 2},
        'pgbackrest_cipher_pass': PASS,
        '__pgbackrest_cluster': CLUSTER,
        '__pgbackrest_info': {'version': '2.55.1'},
        'host_tools_command': '/usr/local/bin/pgops-backup',
    })
    variables.update(_trust(overrides))
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template('{{ %s }}' % expression))


def test_one_local_repository_keeps_the_job_names_of_the_first_release():
    units = render('__pgbackrest_units')
    assert [u['name'] for u in units] == ['pgbackrest-main-full', 'pgbackrest-main-diff', 'pgbackrest-main-incr',
                                          'pgbackrest-main-verify']
    assert units[0]['args'] == ['backup', '--stanza', 'main', '--type', 'full']
    assert units[3]['args'] == ['verify', '--stanza', 'main']
    assert all(u['local'] and u['after'] == 'postgresql@17-main.service' for u in units)
    assert render('__pgbackrest_role') == 'local'


def test_verify_needs_pgbackrest_2_33():
    units = render('__pgbackrest_units', __pgbackrest_info={'version': '2.30'})
    assert [u['name'] for u in units] == ['pgbackrest-main-full', 'pgbackrest-main-diff', 'pgbackrest-main-incr']


def test_several_repositories_get_timers_of_their_own():
    repos = [{'path': '/var/lib/pgbackrest', 'encrypted': False, 'schedule_full': 'Sat *-*-* 02:00:00'}, S3]
    units = dict((u['name'], u) for u in render('__pgbackrest_units', pgbackrest_repositories=repos))
    assert sorted(units) == sorted(['pgbackrest-main-repo1-full', 'pgbackrest-main-repo1-diff', 'pgbackrest-main-repo1-incr',
                                    'pgbackrest-main-repo1-verify', 'pgbackrest-main-repo2-full', 'pgbackrest-main-repo2-diff',
                                    'pgbackrest-main-repo2-verify'])
    assert units['pgbackrest-main-repo1-full']['schedule'] == 'Sat *-*-* 02:00:00'
    assert units['pgbackrest-main-repo2-full']['schedule'] == 'Sun *-*-* 01:00:00'
    assert units['pgbackrest-main-repo2-diff']['args'] == ['backup', '--stanza', 'main', '--type', 'diff', '--repo', '2']
    assert units['pgbackrest-main-repo2-verify']['args'] == ['verify', '--stanza', 'main', '--repo', '2']


def test_object_store_options_and_secrets_stay_apart():
    repos = [{'path': '/var/lib/pgbackrest', 'encrypted': False}, dict(S3, storage_ca_file='/etc/ca.crt', storage_port=9000)]
    options = render('__pgbackrest_global_options', pgbackrest_repositories=repos)
    assert options['repo2-type'] == 's3' and options['repo2-s3-bucket'] == 'b' and options['repo2-s3-uri-style'] == 'path'
    assert options['repo2-storage-ca-file'] == '/etc/ca.crt' and options['repo2-storage-port'] == 9000
    assert options['repo2-cipher-type'] == 'aes-256-cbc' and 'repo1-cipher-type' not in options
    assert options['repo2-retention-full'] == 4
    secrets = render('__pgbackrest_secret_options', pgbackrest_repositories=repos)
    assert secrets == {'repo2-cipher-pass': S3['cipher_pass'], 'repo2-s3-key': S3['s3_key'], 'repo2-s3-key-secret': S3['s3_key_secret']}
    for value in secrets.values():
        assert value not in repr(options)
        assert value not in repr(render('__pgbackrest_repo_list', pgbackrest_repositories=repos))
    names = render('__pgbackrest_option_names', pgbackrest_repositories=repos)
    assert set(secrets) <= set(names) and set(options) <= set(names)


def test_instance_credentials_need_no_keys():
    repos = [dict(S3, s3_key_type='auto', s3_key='', s3_key_secret='')]
    assert render('__pgbackrest_s3_problems', pgbackrest_repositories=repos) == []
    assert render('__pgbackrest_global_options', pgbackrest_repositories=repos)['repo1-s3-key-type'] == 'auto'
    assert sorted(render('__pgbackrest_secret_options', pgbackrest_repositories=repos)) == ['repo1-cipher-pass']


def test_incomplete_object_store_repositories_are_named():
    repos = [{'path': '/r'}, {'path': '/p', 'type': 's3', 's3_endpoint': 'e', 's3_region': 'r', 's3_key': 'k'}]
    problems = render('__pgbackrest_s3_problems', pgbackrest_repositories=repos)
    assert problems == ['repo2: s3_bucket is missing',
                        'repo2: s3_key and s3_key_secret are required with shared keys (or set s3_key_type: auto)']


@pytest.mark.parametrize('repos, default, expected', [
    ([{'path': '/r'}], PASS, []),
    ([{'path': '/r'}], '', ['repo1']),
    ([{'path': '/r'}], 'changeme', ['repo1']),
    ([{'path': '/r', 'encrypted': False}], '', []),
    ([{'path': '/r', 'encrypted': False}, dict(S3, cipher_pass='change_this_to_a_strong_passphrase')], PASS, ['repo2']),
    ([{'path': '/r', 'cipher_pass': 'short'}, dict(S3, cipher_pass='')], PASS, ['repo1']),
])
def test_passphrases_are_checked_per_repository(repos, default, expected):
    assert render('__pgbackrest_cipher_problems', pgbackrest_repositories=repos, pgbackrest_cipher_pass=default) == expected


def _repository_host_play():
    """backup1 serves db1 and db2 (both registered in this play)."""
    groups = {'all': ['backup1', 'db1', 'db2'], 'backups': ['backup1'], 'postgresql': ['db1', 'db2']}
    registration = dict(repository_host='backup1', tls_port=8432, pg_path=CLUSTER['data_directory'], pg_port=5432,
                        version='2.55.1', schedules={'full': 'Sun 01:00', 'diff': '', 'incr': 'hourly', 'verify': ''})
    hostvars = {
        'backup1': {'__pgbackrest_served': {'tls_name': 'backup1.example', 'tls_port': 8432,
                                            'repositories': [{'index': 1, 'type': 'posix'}]}},
        'db1': {'__pgbackrest_registration': dict(registration, host='db1', stanza='db1', tls_name='db1')},
        'db2': {'__pgbackrest_registration': dict(registration, host='db2', stanza='db2', tls_name='db2')},
    }
    return dict(groups=groups, play_hosts=['backup1', 'db1', 'db2'], hostvars=hostvars,
                pgbackrest_repository_group='backups')


def test_the_repository_host_runs_the_jobs_of_every_database_host():
    play = _repository_host_play()
    assert render('__pgbackrest_role', host='backup1', **play) == 'repository'
    units = render('__pgbackrest_units', host='backup1', **play)
    assert [u['name'] for u in units] == ['pgbackrest-db1-full', 'pgbackrest-db1-incr', 'pgbackrest-db2-full', 'pgbackrest-db2-incr']
    assert not any(u['local'] for u in units)
    assert render('__pgbackrest_managed_stanzas', host='backup1', **play) == ['db1', 'db2']
    options = render('__pgbackrest_global_options', host='backup1', **play)
    assert options['repo1-path'] == '/var/lib/pgbackrest' and options['tls-server-cert-file'] == '/etc/pgbackrest/tls/backup1.crt'
    assert render('__pgbackrest_stanza_sections', host='backup1', **play) == {}
    assert 'repo1-cipher-pass' in render('__pgbackrest_secret_options', host='backup1', **play)


def test_a_database_host_reaches_every_repository_through_the_repository_host_and_keeps_no_secret():
    play = _repository_host_play()
    assert render('__pgbackrest_role', host='db1', **play) == 'database'
    options = render('__pgbackrest_global_options', host='db1', pgbackrest_stanza='db1', **play)
    assert options['repo1-host'] == 'backup1.example' and options['repo1-host-type'] == 'tls'
    assert options['repo1-host-cert-file'] == '/etc/pgbackrest/tls/db1.crt'
    assert options['tls-server-auth'] == 'backup1.example=db1'
    assert not [k for k in options if k.startswith('repo1-') and not k.startswith('repo1-host')]
    assert render('__pgbackrest_secret_options', host='db1', **play) == {}
    assert render('__pgbackrest_units', host='db1', **play) == []
    assert render('__pgbackrest_backup_host', host='db1', **play) == 'backup1'


def _mixed_transport_play():
    """backup1 serves db1 over TLS and db2 over SSH."""
    play = _repository_host_play()
    play['hostvars']['backup1']['__pgbackrest_served']['ssh_name'] = 'backup1.ssh.example'
    play['hostvars']['db1']['__pgbackrest_registration']['transport'] = 'tls'
    play['hostvars']['db2']['__pgbackrest_registration'].update(transport='ssh', ssh_name='db2')
    return play


def test_an_ssh_database_host_reaches_the_repository_host_as_postgres_over_ssh_and_runs_no_tls_server():
    play = _mixed_transport_play()
    options = render('__pgbackrest_global_options', host='db2', pgbackrest_stanza='db2', pgbackrest_repository_transport='ssh', **play)
    assert {k: v for k, v in options.items() if k.startswith('repo1-')} == {
        'repo1-host': 'backup1.ssh.example', 'repo1-host-type': 'ssh', 'repo1-host-user': 'postgres'}
    assert not [k for k in options if k.startswith('tls-')]
    assert render('__pgbackrest_uses_tls', host='db2', pgbackrest_repository_transport='ssh', **play) is False
    assert render('__pgbackrest_ssh_peers', host='db2', pgbackrest_repository_transport='ssh', **play) == ['backup1']
    # The TLS database host next to it is unchanged and exchanges no SSH keys.
    assert render('__pgbackrest_global_options', host='db1', pgbackrest_stanza='db1', **play)['repo1-host-type'] == 'tls'
    assert render('__pgbackrest_ssh_peers', host='db1', **play) == []


def test_the_repository_host_runs_the_tls_server_and_exchanges_keys_with_its_ssh_database_hosts_only():
    play = _mixed_transport_play()
    assert render('__pgbackrest_uses_tls', host='backup1', **play) is True
    assert render('__pgbackrest_ssh_peers', host='backup1', **play) == ['db2']
    assert 'tls-server-cert-file' in render('__pgbackrest_global_options', host='backup1', **play)
    names = render('__pgbackrest_option_names', host='backup1', **play)
    assert 'pg1-host-user' in names and 'tls-server-auth' in names
