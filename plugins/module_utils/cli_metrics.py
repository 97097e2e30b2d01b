# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup metrics`: the backup health metrics as a node_exporter textfile.

The monitoring role's timer runs it every minute as root, with `--run-as postgres` for pgBackRest
and psql. A source that cannot be read (pgBackRest, a cluster, a record) is reported in the metrics
(`pgops_backup_collector_success 0`) and on stderr, and the command still writes the file: only
failing to write it fails the command (and so the unit, which calls the notification hook).
"""

import json
import os
import sys

from . import metrics
from .process import EngineError, Runner
from .cli_output import say as _say, run_as as _run_as


def cmd_metrics(args):
    if not args.file_name.endswith('.prom') or os.sep in args.file_name:
        _say(args, 'FAILED: --file-name must be a file name ending in .prom (node_exporter reads only those)')
        return 2
    try:
        objectives = metrics.load_objectives(args.objectives)
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 2
    state = metrics.load_state(args.state_file)
    runner = Runner(run_as=_run_as(args))
    snap = metrics.collect(runner, record_dir=args.record_dir, objectives=objectives, state=state,
                           config=args.config, stanzas=args.stanza or None)
    for source, status in sorted(snap['collectors'].items()):
        if status.get('ok') is False:
            _say(args, 'reading %s failed: %s' % (source, status.get('error')))
    text = metrics.render(snap)
    if args.json:
        sys.stdout.write(json.dumps(snap, indent=2, sort_keys=True, default=str) + '\n')
    if args.textfile_dir == '-':
        sys.stdout.write(text)
    else:
        try:
            path = metrics.write_textfile(args.textfile_dir, text, name=args.file_name)
        except (IOError, OSError) as exc:
            _say(args, 'FAILED: cannot write the metrics to %s: %s' % (args.textfile_dir, exc))
            return 1
        _say(args, 'wrote %d samples to %s' % (sum(1 for line in text.splitlines() if not line.startswith('#')),
                                               path))
    if args.state_file:
        try:
            metrics.save_state(args.state_file, state)
        except (IOError, OSError) as exc:
            _say(args, 'cannot save %s (older successes are forgotten): %s' % (args.state_file, exc))
    return 0


def register(subparsers):
    """Add `metrics` to the pgops-backup parser."""
    p = subparsers.add_parser('metrics', help='write backup health metrics for the node_exporter textfile collector')
    p.add_argument('--textfile-dir', dest='textfile_dir', default=metrics.DEFAULT_TEXTFILE_DIR,
                   help='node_exporter textfile directory ("-": print the metrics on stdout)')
    p.add_argument('--file-name', dest='file_name', default=metrics.DEFAULT_TEXTFILE_NAME,
                   help='name of the metrics file in that directory (must end in .prom)')
    p.add_argument('--objectives', default=metrics.DEFAULT_OBJECTIVES_FILE,
                   help='JSON file of objectives (written by the monitoring role); defaults apply without it')
    p.add_argument('--state-file', dest='state_file', default=metrics.DEFAULT_STATE_FILE,
                   help='remembers the last success of pg_dump jobs and restore drills ("" to keep none)')
    p.add_argument('--stanza', action='append', help='only this stanza (repeat); default: every stanza')
    p.set_defaults(func=cmd_metrics)
