# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup evidence`: one archive of backup evidence for a period, for auditors.

Gathers every backup of the period (label, type, times, sizes, repository, cipher and key
fingerprint), WAL archive status and gaps, job records, restore drills, PITR audit records and
restore points, with who asked for each, into a tar.gz with evidence.json, summary.md, the raw
records and MANIFEST.sha256 (mode 0600 in a 0700 directory; see docs/evidence.md). Run it as root:
the key fingerprints need the pgBackRest configuration. Prints the bundle's path (`--json`: the
result). Exit 0 when the bundle was written.
"""

import argparse
import json
import os
import socket
import sys

from . import evidence
from .pgbackrest import PgBackRest
from .postgres import tool_user
from .process import EngineError, Runner
from .records import JobRecord
from .cli_output import say as _say

RECORD_NAME = 'evidence'


def _who(args, environ=None):
    environ = os.environ if environ is None else environ
    return args.requested_by or environ.get('SUDO_USER') or environ.get('USER') or environ.get('LOGNAME') or 'unknown'


def cmd_evidence(args):
    who = _who(args)
    record = JobRecord(RECORD_NAME, args.record_dir, host=socket.getfqdn(), requested_by=who, reason=args.reason)
    try:
        span = evidence.period(args.since, args.until)
    except EngineError as exc:
        # Refused before anything is read or written.
        _say(args, 'FAILED: %s' % exc.full_message(), always=True)
        return 2
    runner = Runner(run_as=tool_user(args.run_as))
    try:
        gathered = evidence.gather(runner, PgBackRest(runner, config=args.config), span, args.record_dir,
                                   config=args.config, include_dir=args.config_include_path, job_dir=args.job_dir,
                                   registry_dir=args.registry_dir, hostname=socket.getfqdn(), requested_by=who,
                                   reason=args.reason, stanzas=args.stanza)
        result = evidence.write_bundle(gathered, args.output_dir)
    except (EngineError, IOError, OSError) as exc:
        message = exc.full_message() if isinstance(exc, EngineError) else str(exc)
        data = record.finish('failed', error=message)
        _say(args, 'FAILED: %s' % message, always=True)
        if args.json:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + '\n')
        return 1
    ev = gathered['evidence']
    counts = {'backups': len(ev['backups']), 'drills': len(ev['drills']), 'pitr': len(ev['pitr']),
              'jobs': len(ev['jobs']), 'restore_points': len(ev['restore_points']),
              'redactions': len(ev['redactions'])}
    data = record.finish('ok', bundle=result['path'], sha256=result['sha256'], size=result['size'],
                         period=ev['period'], counts=counts, redactions=result['redactions'], notes=ev['notes'])
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + '\n')
    else:
        sys.stdout.write('%s\n' % result['path'])
    _say(args, 'evidence %s .. %s: %d backup(s), %d drill(s), %d PITR record(s), %d job record(s) in %s (sha256 %s)%s'
         % (ev['period']['since'], ev['period']['until'], counts['backups'], counts['drills'], counts['pitr'],
            counts['jobs'], result['path'], result['sha256'],
            '; %d file(s) had a secret, redacted: see summary.md' % counts['redactions'] if counts['redactions'] else ''))
    return 0


def register(subparsers):
    """Add `evidence` to the pgops-backup parser."""
    p = subparsers.add_parser('evidence', help='an archive of backup evidence for a period (auditors)')
    p.add_argument('--since', default=evidence.DEFAULT_PERIOD,
                   help='start of the period: a duration back from now (30d), a date (UTC), a time with its zone '
                        'or epoch seconds (default: %(default)s)')
    p.add_argument('--until', default='now', help='end of the period, same forms (default: now)')
    p.add_argument('--stanza', action='append', help='only this stanza (repeat); default: every stanza')
    p.add_argument('--output-dir', dest='output_dir', default=evidence.DEFAULT_EVIDENCE_DIR,
                   help='where the bundle is written (made 0700; default: %(default)s)')
    p.add_argument('--reason', help='why the bundle is made (e.g. the audit ticket), kept in it')
    p.add_argument('--requested-by', dest='requested_by', help='who asked (default: SUDO_USER or USER)')
    p.add_argument('--config-include-path', dest='config_include_path', default=evidence.DEFAULT_INCLUDE_DIR,
                   help=argparse.SUPPRESS)
    p.add_argument('--job-dir', dest='job_dir', default=evidence.DEFAULT_JOB_DIR, help=argparse.SUPPRESS)
    p.add_argument('--registry-dir', dest='registry_dir', default=evidence.DEFAULT_REGISTRY_DIR,
                   help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_evidence)
