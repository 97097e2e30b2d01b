# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  config:
    description:
      - pgBackRest configuration file.
      - When omitted, pgBackRest's own default (C(/etc/pgbackrest/pgbackrest.conf)) applies.
    type: path
  run_as:
    description:
      - Operating system user that runs pgBackRest and psql when the module runs as root.
      - The repository and the cluster's data directory belong to this user.
      - C(root) is refused (pgBackRest run as root leaves root-owned files in the repository, spool, log and
        lock paths, and newer releases refuse it).
    type: str
    default: postgres
requirements:
  - pgBackRest installed on the managed host (the C(pgbackrest) package).
notes:
  - Commands are run as argument lists, never through a shell; the commands run are returned in C(commands).
'''
