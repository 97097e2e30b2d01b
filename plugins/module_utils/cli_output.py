# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every subcommand of the host command prints: progress for a person on stderr (silenced by
--quiet), and the machine-readable result on stdout (only with --json)."""

from __future__ import annotations

import json
import sys


def say(args, text, always=False):
    """One progress line on stderr, unless --quiet (always=True: also with --quiet)."""
    if always or not args.quiet:
        sys.stderr.write('pgops-backup: %s\n' % text)
        sys.stderr.flush()


def emit(args, data):
    """The result as JSON on stdout, with --json."""
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + '\n')
