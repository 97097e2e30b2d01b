# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgbackrest_retention_policy in the pgbackrest role: pgBackRest's count retention raised, and the
retention run after each scheduled backup; empty leaves today's count retention unchanged."""

from __future__ import annotations

import os

import jinja2

from ansible_collections.pgops.backup.tests.unit.roles.pgbackrest_role_vars import ROLE, render


def test_no_policy_keeps_the_count_retention_and_runs_nothing_after_backups():
    assert render('__pgbackrest_repo_options')['repo1-retention-full'] == 2
    assert all(u['retention'] == [] for u in render('__pgbackrest_units'))


def test_a_policy_raises_the_count_and_runs_after_each_backup_per_repository():
    policy = {'daily': 14, 'weekly': 8, 'monthly': 12}
    repos = [{'path': '/var/lib/pgbackrest'}, {'path': '/srv/repo2', 'retention_full': 4}]
    options = render('__pgbackrest_repo_options', pgbackrest_retention_policy=policy, pgbackrest_repositories=repos)
    assert options['repo1-retention-full'] == 9999999 and options['repo2-retention-full'] == 9999999
    units = dict((u['name'], u) for u in render('__pgbackrest_units', pgbackrest_retention_policy=policy,
                                                pgbackrest_repositories=repos))
    assert units['pgbackrest-main-repo2-full']['retention'] == [
        '--quiet', 'retention', '--stanza', 'main', '--repo', '2', '--policy-file',
        '/etc/pgops-backup/retention-policy.json']
    assert units['pgbackrest-main-repo1-incr']['retention'][:4] == ['--quiet', 'retention', '--stanza', 'main']
    assert units['pgbackrest-main-repo1-verify']['retention'] == []


def test_the_service_runs_the_policy_after_the_backup():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLE, 'templates')), autoescape=False)
    env.filters['quote'] = lambda s: s
    item = {'stanza': 'main', 'description': 'full backup', 'after': '', 'local': False,
            'args': ['backup', '--stanza', 'main', '--type', 'full'],
            'retention': ['--quiet', 'retention', '--stanza', 'main', '--policy-file', '/etc/p.json']}
    text = env.get_template('pgbackrest-job.service.j2').render(item=item, host_tools_command='/usr/local/bin/pgops-backup',
                                                                ansible_managed='x')
    assert 'ExecStartPost=/usr/local/bin/pgops-backup --quiet retention --stanza main --policy-file /etc/p.json' in text
    text = env.get_template('pgbackrest-job.service.j2').render(item=dict(item, retention=[]), ansible_managed='x',
                                                                host_tools_command='/usr/local/bin/pgops-backup')
    assert 'ExecStartPost' not in text
