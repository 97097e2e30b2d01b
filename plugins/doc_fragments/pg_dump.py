# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  port:
    description:
      - Port of the PostgreSQL cluster.
      - libpq's default (5432) when omitted.
    type: int
  host:
    description:
      - Socket directory or host name of the cluster.
      - The local socket (peer authentication as O(run_as)) when omitted.
    type: str
  user:
    description:
      - Database user the tools connect as.
      - The operating system user (O(run_as)) when omitted.
    type: str
  passfile:
    description:
      - libpq password file (mode 0600) for password authentication.
      - Passed to the tools as E(PGPASSFILE); passwords are never put on a command line.
    type: path
  run_as:
    description:
      - Operating system user that runs pg_dump, pg_restore, psql and gpg, and that the row-counting
        session connects as, when the module runs as root.
      - Files and directories the module creates belong to this user.
      - C(root) is refused.
    type: str
    default: postgres
  bin_dir:
    description:
      - Directory holding C(pg_dump), C(pg_dumpall), C(pg_restore) and C(psql), for example C(/usr/lib/postgresql/17/bin).
      - The programs on E(PATH) (on Debian and Ubuntu the postgresql-common wrappers, which pick the newest installed client) when omitted.
    type: path
requirements:
  - The PostgreSQL client programs (C(postgresql-client)) on the managed host.
  - psycopg2 on the managed host (the C(python3-psycopg2) package) for the row counts.
  - gpg (the C(gnupg) package) when dumps are encrypted.
notes:
  - Commands are run as argument lists, never through a shell; the commands run are returned in C(commands).
  - The row counts are taken by a child process that switches to O(run_as) before it connects, so peer
    authentication over the local socket works while the module itself runs as root.
'''
