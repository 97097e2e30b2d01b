# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make `ansible_collections.pgops.backup` importable for the unit tests.

The project keeps the collection at <root>/.cache/collections/ansible_collections/pgops/backup
(a symlink to the repository), so that directory goes first on sys.path. Under ansible-test the
collection is already importable and the path simply does not exist.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')

if os.path.isdir(COLLECTIONS) and COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
