# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Test-only: the project's ansible.cfg puts this directory first, so molecule's `podman` connection
# resolves here. It is containers.podman's connection with pipelining: a module runs in one
# `podman exec -i` instead of five execs (home, mkdtemp, chmod, run, rm), which makes every task
# about three times cheaper on the test hosts, as pipelining does over SSH in production.
from __future__ import annotations

DOCUMENTATION = """
    name: podman
    short_description: containers.podman.podman with pipelining (pgops.backup tests)
    description:
      - Runs commands in an existing podman container; module code goes through stdin (pipelining).
    author: pgops.backup contributors (@pgops)
    extends_documentation_fragment:
      - connection_pipelining
    options:
      remote_addr:
        description: The container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: User to run commands as inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to pass to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description: Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        """Like the parent's, with -i when there is input to pass (the pipelined module)."""
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ['exec', '-i'] if in_data else ['exec']
        if self.user:
            args.extend(('--user', self.user))
        return self._podman(args, shlex.split(to_native(cmd, errors='surrogate_or_strict')), in_data)
