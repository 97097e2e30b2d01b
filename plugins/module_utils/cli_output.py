# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host command's small kernel, shared by every subcommand: progress for a person on stderr
(silenced by --quiet), the machine-readable result on stdout (only with --json), the one run-as
rule, and SIGTERM turned into a clean exit."""

from __future__ import annotations

import json
import signal
import sys

from .postgres import tool_user
from .process import EngineError


def say(args, text, always=False):
    """One progress line on stderr, unless --quiet (always=True: also with --quiet)."""
    if always or not args.quiet:
        sys.stderr.write('pgops-backup: %s\n' % text)
        sys.stderr.flush()


def emit(args, data):
    """The result as JSON on stdout, with --json."""
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + '\n')


def run_as(args):
    """The engine's one run-as rule (postgres.tool_user): postgres when started as root."""
    return tool_user(args.run_as)


def terminate_cleanly():
    """systemd stops a unit with SIGTERM: turn it into SystemExit, so that the job's cleanup (partial
    output, a scratch instance) runs as it does on any other failure."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def load_settings_file(path, what, allowed, hint=None):
    """A JSON object of settings written by a role (job file, drill file): refused when unreadable, not an
    object, or holding a key the command does not know."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise EngineError('cannot read %s %s: %s' % (what, path, exc))
    if not isinstance(data, dict):
        raise EngineError('%s %s must hold a JSON object' % (what, path))
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise EngineError('%s %s has unknown keys: %s' % (what, path, ', '.join(unknown)), hint=hint)
    return data
