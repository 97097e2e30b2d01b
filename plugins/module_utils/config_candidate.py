# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configuration files proven before they go live.

A new pgbackrest.conf (with its conf.d files) or a PostgreSQL conf.d file is first written as a
candidate: same owner and mode, in a private directory beside the live files. The installed tools
then prove the candidate: pgBackRest parses every option value for every command and reads every
existing repository with it (a passphrase that cannot decrypt is caught here); PostgreSQL parses
the whole configuration with the candidate in place. Only then are the changed files written beside
the live ones and, once all are written, renamed over them (each rename atomic on one filesystem). On any failure the live files are untouched, so WAL
archiving keeps working; and since no proof reads the live files, a live file broken by hand is
repaired by the next run with correct values.
"""

import errno
import grp
import os
import pwd
import re
import shutil
import tempfile

from .pgbackrest import NOT_FOR_COMMAND, error_from_result, parse_command_names
from .process import EngineError

LIVE_CONFIG = '/etc/pgbackrest/pgbackrest.conf'
LIVE_INCLUDE = '/etc/pgbackrest/conf.d'
CANDIDATE_PREFIX = '.pgops-candidate-'

# How a pgBackRest repository is rotated to a new passphrase: it cannot be re-keyed in place.
ROTATION_HINT = ('a pgBackRest repository cannot be re-keyed in place: keep the old passphrase for this repository, '
                 'or rotate through a new repository (add it to pgbackrest_repositories with its own cipher_pass, '
                 'let it take a full backup, then remove the old one once its backups have expired); '
                 'see docs/refusals.md')
_OPTION_IN_ERROR = re.compile(r"for '([a-z0-9-]+)' option")
_SETTING_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=', re.MULTILINE)
_LOG_LINE_RE = re.compile(r'^\S+ \S+ \S+ \[\d+\] (?:LOG|FATAL|HINT|DETAIL):\s*', re.MULTILINE)
_CREDENTIAL_WORDS = ('403', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied')
_DOWN_WORDS = ('unable to connect', 'Connection refused', 'timeout', 'timed out', 'unable to get address')


def _unindexed(option):
    """repo1-retention-full -> repo-retention-full: the name `pgbackrest help` knows."""
    return re.sub(r'^(repo|pg)\d+-', r'\1-', option)


class ManagedFile(object):
    """One file the caller wants live: `name` relative to the configuration's directory."""

    def __init__(self, name, content, mode=0o640, owner='postgres', group='postgres', secret=False):
        if os.path.isabs(name) or '..' in name.split('/'):
            raise EngineError('managed file name %r must be relative, without ..' % name)
        self.name = name
        self.content = content if content.endswith('\n') else content + '\n'
        self.mode = mode
        self.owner = owner
        self.group = group
        self.secret = secret


def _ids(owner, group):
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise EngineError('user or group %s does not exist on this host' % exc,
                          hint='install PostgreSQL first (it creates the postgres user)')


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def write_file(path, managed):
    """Write `managed` to path with its owner and mode, fsync'ed."""
    uid, gid = _ids(managed.owner, managed.group)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        os.fchown(handle.fileno(), uid, gid)
        os.fchmod(handle.fileno(), managed.mode)
        handle.write(managed.content)
        handle.flush()
        os.fsync(handle.fileno())


def replace_atomically(live_path, managed):
    """Write beside the live file, then rename over it: readers see the old or the new file, never half."""
    directory = os.path.dirname(live_path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(live_path), dir=directory)
    os.close(fd)
    try:
        write_file(tmp, managed)
        os.rename(tmp, live_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def replace_all_atomically(pairs):
    """Several files at once: every new file is written (fsync'ed) beside its live file first, and only
    when all are written are they renamed over the live ones. A failure while writing (no space, a
    permission) leaves every live file as it was and no temporary file behind."""
    staged = []
    try:
        for live_path, managed in pairs:
            fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(live_path), dir=os.path.dirname(live_path))
            os.close(fd)
            staged.append((tmp, live_path))
            write_file(tmp, managed)
    except BaseException as exc:
        for tmp, _live in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if isinstance(exc, (IOError, OSError)):
            raise EngineError('could not write the new %s: %s; every live file is unchanged'
                              % (live_path, exc.strerror or exc),
                              hint='free space (or fix the permission) in %s and run again' % os.path.dirname(live_path))
        raise
    for tmp, live_path in staged:
        os.rename(tmp, live_path)
    for directory in sorted(set(os.path.dirname(live_path) for _tmp, live_path in staged)):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return [live_path for _tmp, live_path in staged]


def needs_write(live_path, managed):
    if read_text(live_path) != managed.content:
        return True
    st = os.stat(live_path)
    uid, gid = _ids(managed.owner, managed.group)
    return (st.st_mode & 0o7777) != managed.mode or st.st_uid != uid or st.st_gid != gid


class Staging(object):
    """A private directory beside the live files (same filesystem: owners and modes as live)."""

    def __init__(self, parent, owner='root', group='postgres'):
        self.parent = parent
        self.owner = owner
        self.group = group
        self.path = None

    def __enter__(self):
        if not os.path.isdir(self.parent):
            raise EngineError('%s does not exist' % self.parent, hint='install the package that provides it first')
        self.path = tempfile.mkdtemp(prefix=CANDIDATE_PREFIX, dir=self.parent)
        uid, gid = _ids(self.owner, self.group)
        os.chown(self.path, uid, gid)
        os.chmod(self.path, 0o750)
        return self

    def __exit__(self, *exc):
        if self.path:
            shutil.rmtree(self.path, ignore_errors=True)
        return False


def remove_leftover_candidates(parent):
    """Candidates of a run that was killed: never live, safe to remove (they may hold secrets)."""
    if not os.path.isdir(parent):
        return
    for name in os.listdir(parent):
        if name.startswith(CANDIDATE_PREFIX):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


# --- pgBackRest ---------------------------------------------------------------------------------------

class PgBackRestConfigChange(object):
    """Prove a new pgbackrest.conf + conf.d files with the installed pgBackRest, then swap them in.

    files: ManagedFile list; 'pgbackrest.conf' and 'conf.d/NAME.conf' (relative to the directory of
        config_path). conf.d files that exist live and are not managed are part of the candidate as they are.
    stanzas: stanza names whose sections must parse and whose repositories must be readable.
    repositories: [{'index': N, 'type': 'posix'|'s3'|..., 'path': ..., 'encrypted': bool}] kept on this host
        (empty on a database host whose repositories live on a repository host).
    """

    def __init__(self, runner, files, config_path=LIVE_CONFIG, include_path=LIVE_INCLUDE, stanzas=(),
                 repositories=()):
        self.runner = runner
        self.pg_runner = runner.as_user('postgres')
        self.config_path = config_path
        self.include_path = include_path
        self.base = os.path.dirname(config_path)
        self.files = list(files)
        self.stanzas = list(stanzas)
        self.repositories = list(repositories)
        self.problems = []
        names = [f.name for f in self.files]
        if os.path.basename(config_path) not in names:
            raise EngineError('the managed files must include %s' % os.path.basename(config_path))

    def live_path(self, managed):
        if managed.name == os.path.basename(self.config_path):
            return self.config_path
        return os.path.join(self.include_path, os.path.basename(managed.name))

    def changed_files(self):
        return [f for f in self.files if needs_write(self.live_path(f), f)]

    def diff(self):
        """before/after of each changed file; secrets only say that they changed."""
        out = []
        for managed in self.changed_files():
            path = self.live_path(managed)
            before = read_text(path)
            if managed.secret:
                before = '' if before is None else '(secret: %d lines)\n' % len(before.splitlines())
                after = '(secret: %d lines, changed)\n' % len(managed.content.splitlines())
            else:
                before = before or ''
                after = managed.content
            out.append({'before_header': path, 'after_header': path, 'before': before, 'after': after})
        return out

    # -- staging

    def _stage(self, directory):
        config = os.path.join(directory, os.path.basename(self.config_path))
        include = os.path.join(directory, 'conf.d')
        os.mkdir(include)
        uid, gid = _ids('root', 'postgres')
        os.chown(include, uid, gid)
        os.chmod(include, 0o750)
        managed = {}
        for f in self.files:
            if f.name == os.path.basename(self.config_path):
                write_file(config, f)
            else:
                managed[os.path.basename(f.name)] = f
                write_file(os.path.join(include, os.path.basename(f.name)), f)
        # The user's own conf.d files are live too: they belong to what is proven.
        if os.path.isdir(self.include_path):
            for name in sorted(os.listdir(self.include_path)):
                src = os.path.join(self.include_path, name)
                if name.endswith('.conf') and name not in managed and os.path.isfile(src):
                    shutil.copy2(src, os.path.join(include, name))
                    st = os.stat(src)
                    os.chown(os.path.join(include, name), st.st_uid, st.st_gid)
        return config, include

    # -- proofs

    def _pgbackrest(self, config, include, *args):
        argv = [self.pg_runner.binary('pgbackrest'), '--config=%s' % config, '--config-include-path=%s' % include]
        return self.pg_runner.run(argv + list(args), check=False)

    def prove_option_values(self, config, include):
        """`help COMMAND` parses every option value that COMMAND takes: ranges, enums, types."""
        binary = self.pg_runner.binary('pgbackrest')
        commands = parse_command_names(self.pg_runner.run([binary, 'help']).stdout)
        seen = set()
        for stanza in [None] + self.stanzas:
            for command in commands:
                args = (['--stanza=%s' % stanza] if stanza else []) + ['help', command]
                result = self._pgbackrest(config, include, *args)
                if result.rc != 0 and NOT_FOR_COMMAND.search(result.stdout + result.stderr):
                    continue  # version takes no configuration, server no stanza: nothing to parse there
                if result.rc != 0:
                    detail = ' '.join(line.strip() for line in (result.stdout + result.stderr).splitlines()
                                      if line.strip())
                    detail = re.sub(r'^.*?ERROR:\s*', '', detail)
                    if detail not in seen:
                        seen.add(detail)
                        option = _OPTION_IN_ERROR.search(detail)
                        self.problems.append('option value refused by pgBackRest (%s%s): %s; correct it (%s)' % (
                            command, ', stanza %s' % stanza if stanza else '', detail,
                            '`pgbackrest help %s %s` says what it takes' % (command, _unindexed(option.group(1)))
                            if option else '`pgbackrest help %s` lists the options' % command))

    def prove_posix_paths(self):
        for repo in self.repositories:
            if repo.get('type', 'posix') != 'posix':
                continue
            path = repo['path']
            probe = path
            while not os.path.exists(probe):
                probe = os.path.dirname(probe)
            name = 'repo%s' % repo['index']
            if not os.path.isdir(probe):
                self.problems.append('%s path %s cannot be created: %s is not a directory' % (name, path, probe))
            elif os.statvfs(probe).f_flag & os.ST_RDONLY:
                self.problems.append('%s path %s is on a read-only filesystem (%s): choose a writable path'
                                     % (name, path, probe))
            elif not os.access(probe, os.W_OK):
                self.problems.append('%s path %s cannot be written (%s)' % (name, path, probe))

    def prove_repositories(self, config, include):
        """Read each stanza's archive.info and backup.info in each repository with the candidate."""
        for stanza in self.stanzas:
            for repo in self.repositories:
                name = 'repo%s' % repo['index']
                for info in ('archive/%s/archive.info' % stanza, 'backup/%s/backup.info' % stanza):
                    result = self._pgbackrest(config, include, '--stanza=%s' % stanza, '--repo=%s' % repo['index'],
                                              'repo-get', info)
                    problem = self._read_problem(result, stanza, name, repo, info)
                    if problem == 'missing':
                        break  # a stanza not created in this repository yet: nothing to prove
                    if problem:
                        self.problems.append(problem)
                        break

    @staticmethod
    def _read_problem(result, stanza, name, repo, info):
        text = result.stdout + '\n' + result.stderr
        if result.rc == 0:
            if not result.stdout.lstrip().startswith('['):
                return ('%s holds encrypted data for stanza %s (%s) but the new configuration does not decrypt it '
                        '(encrypted: false?); keep the repository encrypted with its passphrase' % (name, stanza, info))
            return None
        err = error_from_result(result, 'repo-get')
        if err.code == 55 or 'missing' in (err.msg or '').lower():
            return 'missing'
        if err.code == 95:
            return ('the new passphrase for %s cannot decrypt stanza %s (%s): the repository was encrypted with '
                    'another passphrase; %s' % (name, stanza, info, ROTATION_HINT))
        if any(word in text for word in _CREDENTIAL_WORDS):
            return ('%s (%s): the object store refused the new credentials for stanza %s: check s3_key and '
                    's3_key_secret (the request was answered, the key was not accepted)' % (name, repo.get('type'), stanza))
        if err.code == 49 or any(word in text for word in _DOWN_WORDS):
            return ('%s (%s) is not reachable: the object store or repository host is down or blocked, so the new '
                    'configuration cannot be proven; nothing was changed - retry when it is back' % (name, repo.get('type')))
        return '%s: reading stanza %s with the new configuration failed: %s' % (name, stanza, err.msg)

    def prove(self):
        """Stage and prove; the list of problems (empty: the candidate is good)."""
        remove_leftover_candidates(self.base)
        self.problems = []
        with Staging(self.base) as staging:
            config, include = self._stage(staging.path)
            self.prove_option_values(config, include)
            self.prove_posix_paths()
            if not self.problems:
                self.prove_repositories(config, include)
        return self.problems

    def apply(self):
        """Swap the changed files in (call after prove() returned no problem), all written before any is
        renamed. Returns the live paths written."""
        return replace_all_atomically([(self.live_path(managed), managed) for managed in self.changed_files()])

    def missing_directories(self):
        return [r['path'] for r in self.repositories
                if r.get('type', 'posix') == 'posix' and not os.path.isdir(r['path'])]

    def ensure_posix_directories(self):
        """Create missing posix repository directories for postgres (after the proof)."""
        uid, gid = _ids('postgres', 'postgres')
        made = self.missing_directories()
        for path in made:
            os.makedirs(path, 0o750)
            os.chown(path, uid, gid)
        return made


# --- PostgreSQL -----------------------------------------------------------------------------------------

def setting_names(content):
    return _SETTING_RE.findall(content)


class PostgresConfFile(object):
    """A conf.d file of a PostgreSQL cluster, proven by `postgres -C` against a copy of the cluster's
    configuration with the candidate in place, then swapped in."""

    def __init__(self, runner, config_directory, bin_dir, managed):
        self.runner = runner.as_user('postgres')
        self.config_directory = config_directory
        self.bin_dir = bin_dir
        self.managed = managed
        self.live_path = os.path.join(config_directory, 'conf.d', os.path.basename(managed.name))

    def changed(self):
        return needs_write(self.live_path, self.managed)

    def diff(self):
        return {'before_header': self.live_path, 'after_header': self.live_path,
                'before': read_text(self.live_path) or '', 'after': self.managed.content}

    def prove(self):
        main_conf = os.path.join(self.config_directory, 'postgresql.conf')
        if not os.path.isfile(main_conf):
            raise EngineError('%s does not exist' % main_conf, hint='is the cluster created (pg_createcluster)?')
        names = setting_names(self.managed.content)
        if not names:
            return []
        # Staged in the temporary directory: a directory beside the cluster's would look like a cluster
        # to pg_lsclusters.
        with Staging(tempfile.gettempdir(), owner='postgres', group='postgres') as staging:
            copy = os.path.join(staging.path, 'config')
            shutil.copytree(self.config_directory, copy, symlinks=True)
            for root, dirs, files in os.walk(copy):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), *_ids('postgres', 'postgres'))
            os.lchown(copy, *_ids('postgres', 'postgres'))
            write_file(os.path.join(copy, 'conf.d', os.path.basename(self.managed.name)), self.managed)
            postgres = os.path.join(self.bin_dir, 'postgres')
            result = self.runner.run([postgres, '--config-file=%s' % os.path.join(copy, 'postgresql.conf'),
                                      '-C', names[0]], check=False)
        if result.rc == 0:
            return []
        lines = [_LOG_LINE_RE.sub('', line).strip() for line in result.stderr.splitlines() if line.strip()]
        lines = [line.replace(copy, self.config_directory) for line in lines]
        return ['PostgreSQL refuses %s: %s' % (self.live_path, '; '.join(lines))]

    def apply(self):
        replace_atomically(self.live_path, self.managed)
        return [self.live_path]
