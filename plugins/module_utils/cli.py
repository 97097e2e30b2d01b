# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup`: the host command that systemd timers and people call.

The same engine as the Ansible modules, installed on managed hosts by the host_tools role.
Progress goes to stderr (and so to the journal); `--json` prints the job's record on stdout.
Every job writes its record to the record directory, success or failure. Exit 0 only on success.
"""

import argparse
import json
import os
import re
import socket
import sys

from . import backup as backup_job
from . import cli_dump
from . import cli_evidence
from . import cli_metrics
from . import cli_pitr
from . import cli_drill
from . import cli_retention
from . import cli_window
from . import pgbackrest as pgbr_mod
from . import postgres
from .process import EngineError, Runner, progress_printer
from .records import DEFAULT_RECORD_DIR, JobRecord
from .stanza import validate_stanza_name
from .cli_output import say as _say, emit as _emit

NOTIFY_CONFIG = '/etc/pgops-backup/notify.json'
# The hook's secret (a webhook URL with its token, an API key), next to the configuration: root, 0600.
NOTIFY_SECRET_NAME = 'notify.secret'
# What a credential looks like in an argument: user:password@ in a URL, a token-like query
# parameter, an Authorization header. Such a command would show the secret in `ps` to every user.
_CREDENTIAL_RES = (
    re.compile(r'://[^/@\s]+:[^/@\s]*@'),
    re.compile(r'[?&](?:[a-z_-]*token|[a-z_-]*key|secret|sig|signature|password|passwd|auth|code)=', re.IGNORECASE),
    re.compile(r'^\s*(?:-H\s*)?(?:authorization|x-api-key|private-token)\s*:', re.IGNORECASE),
    re.compile(r'\bBearer\s+\S', re.IGNORECASE),
)
# ExecCondition= semantics: 0 runs the unit, 1..254 skips it, 255 fails it.
SKIP, FAIL = 1, 255
# pgBackRest's lock-acquire error.
LOCK_ACQUIRE = 50


def _runner(args, stream=True):
    return Runner(run_as=args.run_as, stream=progress_printer() if stream and not args.quiet else None)


def _pgbr(args, runner):
    return pgbr_mod.PgBackRest(runner, stanza=getattr(args, 'stanza', None), config=args.config)


def _human_size(value):
    if value is None:
        return '-'
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return '%.1f %s' % (value, unit) if unit != 'B' else '%d B' % value
        value /= 1024.0
    return str(value)


def cmd_backup(args):
    runner = _runner(args)
    pgbr = _pgbr(args, runner)
    # One record per stanza, repository (when named) and type: per-repository timers do not overwrite each other.
    job = 'pgbackrest-backup-%s-%s%s' % (args.stanza, 'repo%d-' % args.repo if args.repo else '', args.type)
    record = JobRecord(job, args.record_dir, stanza=args.stanza, requested_type=args.type, repo=args.repo,
                       host=socket.getfqdn())
    annotations = dict(a.split('=', 1) for a in args.annotation or [])
    _say(args, 'starting %s backup of stanza %s' % (args.type, args.stanza))
    try:
        result = backup_job.run_backup(pgbr, args.type, annotations, repo=args.repo, stream=True)
    except EngineError as exc:
        if exc.code == LOCK_ACQUIRE:
            # Another backup of this stanza is running (e.g. the weekly full): not a failure.
            data = record.finish('skipped', reason='another backup of the stanza is running',
                                 commands=runner.commands)
            _say(args, 'skipped: another backup of stanza %s is running' % args.stanza)
            _emit(args, data)
            return 0
        data = record.finish('failed', error=exc.full_message(), error_code=exc.code, commands=runner.commands)
        _say(args, 'FAILED: %s' % exc.full_message())
        _emit(args, data)
        return 1
    new = result['backup']
    data = record.finish('ok', label=new['label'], type=new['type'], size=new['size'],
                         repo_size=new['repo_size'], repo_delta=new['repo_delta'], backup_seconds=result['seconds'],
                         wal_start=new['wal_start'], wal_stop=new['wal_stop'], commands=runner.commands)
    _say(args, 'backup %s (%s) done in %.1f s: %s, %s written to the repository'
         % (new['label'], new['type'], result['seconds'], _human_size(new['size']), _human_size(new['repo_delta'])))
    _emit(args, data)
    return 0


def cmd_simple(args, command, job):
    """check / verify: run one pgBackRest command and record the outcome."""
    runner = _runner(args)
    pgbr = _pgbr(args, runner)
    repo = getattr(args, 'repo', None)
    record = JobRecord('pgbackrest-%s-%s%s' % (job, args.stanza, '-repo%d' % repo if repo else ''), args.record_dir,
                       stanza=args.stanza, repo=repo, host=socket.getfqdn())
    _say(args, 'running pgbackrest %s for stanza %s' % (command, args.stanza))
    try:
        pgbr.run(command, '--log-level-console=info', *(['--repo=%d' % repo] if repo else []), stream=True)
    except EngineError as exc:
        data = record.finish('failed', error=exc.full_message(), error_code=exc.code, commands=runner.commands)
        _say(args, 'FAILED: %s' % exc.full_message())
        _emit(args, data)
        return 1
    data = record.finish('ok', commands=runner.commands)
    _say(args, '%s passed in %.1f s' % (command, data['duration_seconds']))
    _emit(args, data)
    return 0


def cmd_info(args):
    runner = _runner(args, stream=False)
    pgbr = _pgbr(args, runner)
    try:
        stanzas = pgbr.info(stanza=args.stanza)
    except EngineError as exc:
        _say(args, 'FAILED: %s' % exc.full_message())
        return 1
    if args.json:
        _emit(args, stanzas)
        return 0
    for stanza in stanzas:
        sys.stdout.write('stanza %s: %s\n' % (stanza['name'], stanza['status_message']))
        sys.stdout.write('  WAL archive: %s .. %s\n' % (stanza['archive_min'] or '-', stanza['archive_max'] or '-'))
        for b in stanza['backups']:
            # repo: what the backup itself wrote (pgBackRest reports no set size for bundled backups)
            sys.stdout.write('  %-34s %-4s %10s  repo %10s  %5ss\n' % (
                b['label'], b['type'], _human_size(b['size']), _human_size(b['repo_delta']), b['duration_seconds']))
    return 0


def cmd_should_run(args):
    """ExecCondition for backup units: run only on the cluster role this host backs up from."""
    runner = Runner(run_as=args.run_as)
    try:
        standby = postgres.Psql(runner, port=args.port).is_in_recovery()
    except EngineError as exc:
        _say(args, 'cannot tell whether PostgreSQL is a primary: %s' % exc.full_message())
        return FAIL
    role = 'standby' if standby else 'primary'
    if role != args.role:
        _say(args, 'skipping: this cluster is a %s, backups run on the %s' % (role, args.role))
        return SKIP
    return 0


def _load_notify_config(path):
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return json.load(handle)


def notify_command_problems(command):
    """Arguments of a notification command that carry a credential (they would be visible in `ps`)."""
    return ['argument %d' % index for index, arg in enumerate(command or [])
            if any(regex.search(str(arg)) for regex in _CREDENTIAL_RES)]


def _notify_secret(config_path):
    """(path, value) of the hook's secret file, or (None, None) when there is none."""
    path = os.path.join(os.path.dirname(config_path), NOTIFY_SECRET_NAME)
    try:
        with open(path) as handle:
            return path, handle.read().rstrip('\n')
    except (IOError, OSError):
        return None, None


def cmd_notify(args):
    """OnFailure= hook: hand the failed unit's name and last log lines to the configured command.
    A secret (webhook token) comes from notify.secret, to the command's environment only."""
    config = _load_notify_config(args.notify_config)
    command = config.get('command') or []
    problems = notify_command_problems(command)
    if problems:
        msg = ('refusing to run the notification command: %s of it looks like a credential (a token, password '
               'or Authorization header), which every user of the host would see in ps' % ', '.join(problems))
        hint = ('put the secret in host_tools_notify_secret (the hook passes it as $PGOPS_NOTIFY_SECRET and '
                '$PGOPS_NOTIFY_SECRET_FILE; for curl make it a curl config, url = "https://...", and pass '
                '--config /etc/pgops-backup/notify.secret)')
        JobRecord('notify', args.record_dir, unit=args.unit, host=socket.getfqdn()).finish(
            'failed', notified=False, error='%s; next step: %s' % (msg, hint))
        _say(args, 'FAILED: %s; next step: %s' % (msg, hint))
        return 1
    runner = Runner()
    lines = int(config.get('log_lines', 30))
    log = ''
    try:
        log = runner.run([runner.binary('journalctl', 'systemd'), '--no-pager', '-o', 'short-iso',
                          '-n', str(lines), '-u', args.unit], check=False).stdout
    except EngineError as exc:
        log = 'journal not readable: %s' % exc.msg
    record = JobRecord('notify', args.record_dir, unit=args.unit, host=socket.getfqdn())
    if not command:
        _say(args, 'unit %s failed (no notification command configured)' % args.unit)
        record.finish('ok', notified=False)
        return 0
    env = {'PGOPS_UNIT': args.unit, 'PGOPS_HOST': socket.getfqdn(), 'PGOPS_LOG': log}
    secret_path, secret = _notify_secret(args.notify_config)
    if secret_path:
        env.update(PGOPS_NOTIFY_SECRET=secret, PGOPS_NOTIFY_SECRET_FILE=secret_path)
    result = runner.run(command, check=False, data=log, env=env)
    status = 'ok' if result.rc == 0 else 'failed'
    record.finish(status, notified=result.rc == 0, rc=result.rc, stderr=result.stderr[-2000:])
    _say(args, 'notified about %s: rc=%s' % (args.unit, result.rc))
    return 0 if result.rc == 0 else 1


def build_parser():
    parser = argparse.ArgumentParser(prog='pgops-backup', description=__doc__.strip().splitlines()[0])
    parser.add_argument('--json', action='store_true', help='print the job record as JSON on stdout')
    parser.add_argument('--quiet', action='store_true', help='no progress on stderr')
    parser.add_argument('--config', help='pgBackRest configuration file')
    parser.add_argument('--record-dir', default=DEFAULT_RECORD_DIR, help='where job records are written')
    parser.add_argument('--run-as', default=None,
                        help='started as root (or with sudo), run pgBackRest and the PostgreSQL programs as this '
                             'user (default: postgres; root is refused)')
    sub = parser.add_subparsers(dest='command')
    sub.required = True

    p = sub.add_parser('backup', help='take a pgBackRest backup')
    p.add_argument('--stanza', required=True)
    p.add_argument('--type', choices=backup_job.BACKUP_TYPES, default='incr')
    p.add_argument('--repo', type=int)
    p.add_argument('--annotation', action='append', metavar='KEY=VALUE')
    p.set_defaults(func=cmd_backup)

    for name, help_text in (('check', 'check that archiving works end to end'),
                            ('verify', 'verify the repository contents')):
        p = sub.add_parser(name, help=help_text)
        p.add_argument('--stanza', required=True)
        p.add_argument('--repo', type=int, help='only this repository (verify) / check only this repository')
        p.set_defaults(func=lambda a, n=name: cmd_simple(a, n, n))

    p = sub.add_parser('info', help='show backups and WAL archive range')
    p.add_argument('--stanza')
    p.set_defaults(func=cmd_info)

    p = sub.add_parser('should-run', help='exit 0 when this cluster has the given role (ExecCondition)')
    p.add_argument('--port', type=int, default=5432)
    p.add_argument('--role', choices=('primary', 'standby'), default='primary')
    p.set_defaults(func=cmd_should_run)

    p = sub.add_parser('notify', help='run the configured notification command for a failed unit')
    p.add_argument('unit')
    p.add_argument('--notify-config', default=NOTIFY_CONFIG)
    p.set_defaults(func=cmd_notify)
    cli_dump.register(sub)
    cli_evidence.register(sub)
    cli_metrics.register(sub)
    cli_pitr.register(sub)
    cli_drill.register(sub)
    cli_retention.register(sub)
    cli_window.register(sub)
    return parser


def prepare(args):
    """Checks every subcommand shares, before anything runs: the run-as rule (pgBackRest and the
    PostgreSQL programs run as postgres when started as root or with sudo) and the stanza name."""
    args.run_as = postgres.tool_user(args.run_as)
    stanza = getattr(args, 'stanza', None)
    for name in stanza if isinstance(stanza, list) else [stanza]:
        validate_stanza_name(name)
    return args


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        prepare(args)
    except EngineError as exc:
        sys.stderr.write('pgops-backup: FAILED: %s\n' % exc.full_message())
        # As an ExecCondition (should-run) 1..254 would silently skip the unit: fail it instead.
        return FAIL if args.func is cmd_should_run else 2
    return args.func(args)
