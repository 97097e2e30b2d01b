#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: pg_cluster_info
short_description: Find a PostgreSQL cluster on a Debian or Ubuntu host and read its state
version_added: 0.1.0
description:
  - Lists the clusters managed by postgresql-common (C(pg_lsclusters)) and selects one by version and name.
  - For a running cluster, reads its role (primary or standby), the settings asked for,
    the settings waiting for a restart (C(pending_restart)) and the postmaster start time.
  - Read-only; used by the roles to decide between reload and restart.
options:
  version:
    description: Major version of the cluster. When omitted, the only cluster with the given O(name) is selected.
    type: str
  name:
    description: Cluster name.
    type: str
    default: main
  settings:
    description: Names of server settings to return in RV(cluster.settings).
    type: list
    elements: str
    default: []
  run_as:
    description: User that runs psql (the cluster owner) when the module runs as root.
    type: str
    default: postgres
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
author:
  - pgops.backup contributors (@pgops)
'''

EXAMPLES = r'''
- name: Find the cluster and whether a restart is pending
  pgops.backup.pg_cluster_info:
    settings: [archive_mode, archive_command]
  register: pg

- name: Restart only when a setting needs it
  ansible.builtin.systemd_service:
    name: "postgresql@{{ pg.cluster.version }}-{{ pg.cluster.name }}"
    state: restarted
  when: pg.cluster.pending_restart | length > 0
'''

RETURN = r'''
cluster:
  description: The selected cluster.
  returned: always
  type: dict
  contains:
    version:
      description: Major version.
      type: str
    name:
      description: Cluster name.
      type: str
    port:
      description: Port.
      type: int
    status:
      description: C(online) or C(down) (and C(,recovery) for standbys), as pg_lsclusters reports.
      type: str
    owner:
      description: Cluster owner.
      type: str
    data_directory:
      description: Data directory.
      type: str
    config_directory:
      description: Configuration directory (C(/etc/postgresql/VERSION/NAME)).
      type: str
    service:
      description: systemd unit of the cluster.
      type: str
    running:
      description: Whether the cluster accepts connections.
      type: bool
    in_recovery:
      description: Whether the cluster is a standby (or recovering).
      type: bool
    server_version_num:
      description: C(server_version_num) of the running server.
      type: int
    pending_restart:
      description: Settings that changed but need a restart to take effect.
      type: list
      elements: str
    postmaster_start_time:
      description: Start time of the postmaster, epoch seconds.
      type: str
    settings:
      description: Current values of the settings asked for.
      type: dict
clusters:
  description: Every cluster pg_lsclusters lists.
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.backup.plugins.module_utils.module_support import fail_from, module_runner
from ansible_collections.pgops.backup.plugins.module_utils.postgres import Psql, find_cluster, list_clusters
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            version=dict(type='str'),
            name=dict(type='str', default='main'),
            settings=dict(type='list', elements='str', default=[]),
            run_as=dict(type='str', default='postgres'),
        ),
        supports_check_mode=True,
    )
    runner = module_runner(module)
    try:
        clusters = list_clusters(runner)
        cluster = dict(find_cluster(clusters, module.params['version'], module.params['name']))
        cluster['config_directory'] = '/etc/postgresql/%s/%s' % (cluster['version'], cluster['name'])
        cluster['service'] = 'postgresql@%s-%s.service' % (cluster['version'], cluster['name'])
        cluster['running'] = cluster['status'].startswith('online')
        if cluster['running']:
            psql = Psql(runner, port=cluster['port'])
            cluster['in_recovery'] = psql.is_in_recovery()
            cluster['server_version_num'] = psql.server_version_num()
            cluster['pending_restart'] = psql.pending_restart()
            cluster['postmaster_start_time'] = psql.postmaster_start_time()
            cluster['settings'] = psql.settings(module.params['settings']) if module.params['settings'] else {}
    except EngineError as exc:
        fail_from(module, exc, runner)
    module.exit_json(changed=False, cluster=cluster, clusters=clusters, commands=runner.commands)


if __name__ == '__main__':
    main()
