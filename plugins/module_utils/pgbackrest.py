# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest: command lines, `info --output=json` parsing and error mapping.

Plain Python shared by the Ansible modules and the `pgops-backup` host command.
"""

import json
import os
import re
import shutil
import tempfile

from .process import EngineError

# Stanza status codes reported by `pgbackrest info` (the JSON output is kept stable by pgBackRest).
STATUS_OK = 0
STATUS_MISSING_STANZA_PATH = 1
STATUS_NO_BACKUP = 2
STATUS_MISSING_STANZA_DATA = 3
# Codes meaning "stanza-create has not been run for this repository".
STANZA_MISSING_CODES = (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA)

# pgBackRest error codes (src/build/error/error.yaml) with the next step a person should take.
ERROR_HINTS = {
    27: ('config', 'fix /etc/pgbackrest/pgbackrest.conf; `pgbackrest help <command> <option>` explains each option'),
    31: ('option-invalid', 'remove or correct the option; it is not known to this pgBackRest version'),
    32: ('option-invalid-value', 'correct the option value (e.g. compress-type is zst, not zstd)'),
    37: ('option-required', 'the stanza may not be configured: add its [section] with pg1-path to pgbackrest.conf, or set the missing option'),
    38: ('pg-running', 'stop PostgreSQL before this operation, or let the module stop it'),
    44: ('archive-mismatch', 'the repository holds WAL of another cluster: check system-id, or run stanza-upgrade after a major upgrade'),
    45: ('archive-duplicate', 'a WAL segment with different content is already archived: investigate before deleting anything'),
    49: ('host-connect', 'check that the repository host or object store is reachable'),
    50: ('lock-acquire', 'another pgBackRest command holds the lock for this stanza; wait for it to finish'),
    51: ('backup-mismatch', 'the backup does not match the cluster; check the stanza configuration'),
    55: ('file-missing', 'the stanza does not exist in the repository yet: run stanza-create (state=present)'),
    56: ('db-connect', 'PostgreSQL is not reachable: check pg1-path, pg1-port, pg1-socket-path and that it runs'),
    58: ('db-mismatch', 'the cluster does not match the stanza: after a major upgrade run stanza-upgrade (state=upgraded)'),
    62: ('stop', 'pgBackRest is stopped for this stanza: run `pgbackrest start` when maintenance is over'),
    75: ('backup-set-invalid', 'no usable backup for this request: take a backup or choose another set/target'),
    80: ('db-missing', 'the database does not exist'),
    82: ('archive-timeout', 'WAL did not reach the repository: check archive_command, the repository and the PostgreSQL log'),
    87: ('archive-disabled', 'archive_mode is off: apply the archiving settings and restart PostgreSQL'),
    95: ('crypto', 'wrong repository passphrase or TLS certificate problem: check cipher pass and CA files'),
    103: ('repo-invalid', 'no repository is usable: check every repoN-* setting and its reachability'),
    104: ('command', 'the command reported errors: read the messages above'),
}

_ERROR_RE = re.compile(r'^(?:[\d\-:. ]*P\d+\s+)?ERROR:\s*\[(\d{3})\]:\s*(.*)$', re.MULTILINE)
_VERSION_RE = re.compile(r'pgBackRest\s+(\d+)\.(\d+)(?:\.(\d+))?')
_OPTION_RE = re.compile(r'^\s{2}--([a-z0-9][a-z0-9-]*)\s', re.MULTILINE)
_COMMAND_RE = re.compile(r'^\s{4}([a-z][a-z-]+)\s{2,}\S', re.MULTILINE)
# What pgBackRest says when a command takes no configuration file (version) or no stanza (server).
NOT_FOR_COMMAND = re.compile(r"option '(?:config|stanza)' not valid for command")
_INDEXED_RE = re.compile(r'^(repo|pg)\d+-')


def parse_version(text):
    match = _VERSION_RE.search(text or '')
    if not match:
        raise EngineError('could not read the pgBackRest version from %r' % (text or '').strip())
    return tuple(int(part or 0) for part in match.groups())


def parse_error(text):
    """Return (code, message) of the last pgBackRest ERROR line in text, or (None, None)."""
    found = _ERROR_RE.findall(text or '')
    if not found:
        return None, None
    code, message = found[-1]
    return int(code), message.strip()


def error_from_result(result, what):
    code, message = parse_error(result.stderr + '\n' + result.stdout)
    name, hint = ERROR_HINTS.get(code, (None, None))
    if code is not None:
        msg = '%s failed with pgBackRest error [%03d]%s: %s' % (
            what, code, ' (%s)' % name if name else '', message)
    else:
        msg = '%s failed' % what
    return EngineError(msg, argv=result.argv, rc=result.rc, stdout=result.stdout,
                       stderr=result.stderr, hint=hint, code=code)


def normalize_option(name):
    """repo2-path -> repo-path, pg1-port -> pg-port: the names pgBackRest's help uses."""
    return _INDEXED_RE.sub(lambda m: m.group(1) + '-', name.strip().lower())


def parse_option_names(help_text):
    return set(_OPTION_RE.findall(help_text or ''))


def parse_command_names(help_text):
    return [c for c in _COMMAND_RE.findall(help_text or '') if c != 'help']


def unknown_options(names, supported):
    """Option names (as written in pgbackrest.conf) that this pgBackRest does not know."""
    return sorted(n for n in names if normalize_option(n) not in supported)


def _backup_summary(backup):
    info = backup.get('info') or {}
    repo = info.get('repository') or {}
    ts = backup.get('timestamp') or {}
    archive = backup.get('archive') or {}
    start, stop = ts.get('start'), ts.get('stop')
    return {
        'label': backup.get('label'),
        'type': backup.get('type'),
        'prior': backup.get('prior'),
        'start': start,
        'stop': stop,
        'duration_seconds': (stop - start) if start is not None and stop is not None else None,
        'size': info.get('size'),
        'delta': info.get('delta'),
        # With file bundling (repo-bundle, on with block incremental) pgBackRest no longer reports the set's
        # repository size; a full backup references nothing, so its own delta is the whole set.
        'repo_size': repo.get('size') if repo.get('size') is not None else (
            repo.get('delta') if backup.get('type') == 'full' else None),
        'repo_delta': repo.get('delta'),
        'repo_key': (backup.get('database') or {}).get('repo-key'),
        'db_id': (backup.get('database') or {}).get('id'),
        'wal_start': archive.get('start'),
        'wal_stop': archive.get('stop'),
        'error': backup.get('error', False),
        'annotation': backup.get('annotation') or {},
        'lsn_start': (backup.get('lsn') or {}).get('start'),
        'lsn_stop': (backup.get('lsn') or {}).get('stop'),
    }


def _archive_db_id(archive_id):
    """'17-2' -> 2: the archive id is the PostgreSQL version and the stanza's database id."""
    try:
        return int(str(archive_id).rsplit('-', 1)[1])
    except (IndexError, ValueError):
        return None


def summarize_stanza(entry):
    """Condense one stanza of `pgbackrest info --output=json` into what users and checks need."""
    status = entry.get('status') or {}
    code = status.get('code')
    backups = [_backup_summary(b) for b in entry.get('backup') or []]
    backups.sort(key=lambda b: (b['stop'] or 0, b['label'] or ''))
    last = {}
    for kind in ('full', 'diff', 'incr'):
        of_kind = [b for b in backups if b['type'] == kind]
        last[kind] = of_kind[-1] if of_kind else None
    archives = []
    for arch in entry.get('archive') or []:
        archives.append({
            'id': arch.get('id'),
            'min': arch.get('min'),
            'max': arch.get('max'),
            'repo_key': (arch.get('database') or {}).get('repo-key'),
        })
    current_db = max((d.get('id') or 0 for d in entry.get('db') or []), default=None)
    current = [a for a in archives if current_db is None or _archive_db_id(a['id']) == current_db]
    lock = (status.get('lock') or {}).get('backup') or {}
    return {
        'name': entry.get('name'),
        'status_code': code,
        'status_message': status.get('message'),
        'exists': code is not None and code not in STANZA_MISSING_CODES,
        'ok': code == STATUS_OK,
        'backup_running': bool(lock.get('held')),
        'cipher': entry.get('cipher'),
        'repos': [{'key': r.get('key'), 'cipher': r.get('cipher'),
                   'status_code': (r.get('status') or {}).get('code'),
                   'status_message': (r.get('status') or {}).get('message')}
                  for r in entry.get('repo') or []],
        'databases': [{'id': d.get('id'), 'system_id': d.get('system-id'), 'version': d.get('version'),
                       'repo_key': d.get('repo-key')} for d in entry.get('db') or []],
        'backups': backups,
        'backup_count': len(backups),
        'last_full': last['full'],
        'last_diff': last['diff'],
        'last_incr': last['incr'],
        'newest': backups[-1] if backups else None,
        'archive': archives,
        # The range of the current database history only: after a major upgrade WAL names restart.
        'archive_min': min((a['min'] for a in current if a['min']), default=None),
        'archive_max': max((a['max'] for a in current if a['max']), default=None),
    }


def parse_info(text):
    try:
        # strict=False: a message quoting undecryptable bytes carries raw control characters.
        data = json.loads(text or '[]', strict=False)
    except ValueError as exc:
        raise EngineError('pgbackrest info did not return JSON: %s' % exc, stdout=text)
    if not isinstance(data, list):
        raise EngineError('pgbackrest info returned unexpected JSON (not a list)', stdout=text)
    return [summarize_stanza(entry) for entry in data]


class PgBackRest(object):
    """Command lines for one pgBackRest installation, run through a process.Runner."""

    def __init__(self, runner, stanza=None, config=None, binary=None):
        self.runner = runner
        self.stanza = stanza
        self.config = config
        self._binary = binary
        self._version = None

    @property
    def binary(self):
        if self._binary is None:
            self._binary = self.runner.binary('pgbackrest')
        return self._binary

    def argv(self, command, *options, **kwargs):
        stanza = kwargs.get('stanza', self.stanza)
        argv = [self.binary]
        if self.config:
            argv.append('--config=%s' % self.config)
        if stanza and command not in ('version', 'help'):
            argv.append('--stanza=%s' % stanza)
        argv.extend(options)
        argv.append(command)
        return argv

    def run(self, command, *options, **kwargs):
        stream = kwargs.pop('stream', False)
        result = self.runner.run(self.argv(command, *options, **kwargs), check=False, stream=stream)
        if result.rc != 0:
            raise error_from_result(result, 'pgbackrest %s' % command)
        return result

    def version(self):
        if self._version is None:
            self._version = parse_version(self.run('version').stdout)
        return self._version

    def version_string(self):
        return '.'.join(str(p) for p in self.version())

    def info(self, stanza=None):
        """All stanzas (or one) as summaries. A stanza never created is reported, not raised."""
        options = ['--output=json']
        result = self.run('info', *options, stanza=stanza or self.stanza)
        return parse_info(result.stdout)

    def stanza_info(self):
        found = [s for s in self.info() if s['name'] == self.stanza]
        if not found:
            raise EngineError('stanza %r is not defined in the pgBackRest configuration' % self.stanza,
                              hint='add a [%s] section to pgbackrest.conf (the pgbackrest role does this)' % self.stanza)
        return found[0]

    def supported_options(self):
        """Every option name the installed pgBackRest accepts, as its help lists them.

        `help COMMAND` parses the configuration it is given: an empty one here, so that a live file
        broken by hand (or by an older version) never stops the role that repairs it."""
        names = set()
        empty = tempfile.mkdtemp(prefix='pgops-empty-config-')
        try:
            config = os.path.join(empty, 'pgbackrest.conf')
            open(config, 'w').close()
            os.chmod(empty, 0o755)
            os.chmod(config, 0o644)
            isolated = ['--config=%s' % config, '--config-include-path=%s' % empty]
            for command in parse_command_names(self.runner.run([self.binary, 'help']).stdout):
                result = self.runner.run([self.binary] + isolated + ['help', command], check=False)
                if result.rc != 0 and NOT_FOR_COMMAND.search(result.stdout + result.stderr):
                    # A command that takes no configuration (version): its help reads none either.
                    result = self.runner.run([self.binary, 'help', command])
                elif result.rc != 0:
                    raise error_from_result(result, 'pgbackrest help %s' % command)
                names |= parse_option_names(result.stdout)
        finally:
            shutil.rmtree(empty, ignore_errors=True)
        return names
