# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpg symmetric encryption of dump files, passphrase on stdin only.

The passphrase is read from a 0600 file or an environment variable by the engine and handed to
gpg on its standard input (`--passphrase-fd 0`): it is never in argv, never in a file gpg opens,
and `--no-symkey-cache` keeps it out of gpg-agent's cache. gpg runs with a private, temporary
home directory whose agent is stopped afterwards, so nothing outlives the job.

A run killed with SIGKILL cannot clean up after itself: decrypted files stay in its work
directory and its gpg home stays in /tmp. Both therefore have predictable names that carry the
host and the process id (`.restore-HOST-PID`, `pgops-gnupg-PID-N`), are private (0700), and the
next run removes those of processes that no longer exist before it creates its own.
"""

import errno
import itertools
import os
import re
import shutil
import socket
import stat
import tempfile

from .process import EngineError

GPG_SUFFIX = '.gpg'
PASSPHRASE_ENV = 'PGOPS_DUMP_PASSPHRASE'
# Work directories for decrypted files (same prefix as dump_manifest.RESTORE_PREFIX: never a dump).
WORK_PREFIX = '.restore-'
HOME_PREFIX = 'pgops-gnupg-'
_HOME_RE = re.compile(r'^%s(\d+)-\d+$' % re.escape(HOME_PREFIX))
_homes = itertools.count(1)


def _host():
    return re.sub(r'[^A-Za-z0-9.]', '_', socket.gethostname()) or 'localhost'


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH  # EPERM: it exists, as another user
    return True


def _work_pid(name, host):
    """The pid in a work directory name of this host, or None (another host's, or not ours)."""
    prefix = WORK_PREFIX + host + '-'
    if not name.startswith(prefix) or not name[len(prefix):].isdigit():
        return None
    return int(name[len(prefix):])


def remove_stale_work(parent, say=None):
    """Remove the decrypted work directories under `parent` left by killed runs on this host
    (their process is gone). Returns the paths removed."""
    removed = []
    host = _host()
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in sorted(names):
        pid = _work_pid(name, host)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        path = os.path.join(parent, name)
        if say:
            say('removing decrypted files left by an interrupted run: %s' % path)
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
    return removed


def decrypt_work_dir(parent, chown=None, say=None):
    """A private (0700) directory for decrypted files, parent/.restore-HOST-PID, created after the
    leftovers of killed runs were removed. The caller removes it when done."""
    remove_stale_work(parent, say)
    path = os.path.join(parent, '%s%s-%d' % (WORK_PREFIX, _host(), os.getpid()))
    if os.path.lexists(path):  # ours from an earlier job of this process
        shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)
    if chown:
        chown(path)
    return path


def remove_stale_homes(runner=None, base=None):
    """Remove gpg home directories of killed runs (pgops-gnupg-PID-N whose PID is gone) and stop
    their agents. Returns the paths removed."""
    base = base or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in sorted(names):
        match = _HOME_RE.match(name)
        if not match or int(match.group(1)) == os.getpid() or pid_alive(int(match.group(1))):
            continue
        path = os.path.join(base, name)
        _kill_agent(runner, path)
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
    return removed


def _kill_agent(runner, homedir):
    if runner is None:
        return
    try:
        gpgconf = runner.binary('gpgconf', 'gnupg')
        runner.run([gpgconf, '--homedir', homedir, '--kill', 'gpg-agent'], check=False)
    except EngineError:
        pass


def load_passphrase(passphrase=None, passphrase_file=None, passphrase_env=None):
    """The passphrase from (in that order) a value, a file readable only by its owner, or an
    environment variable. Returns None when none is configured."""
    if passphrase:
        return passphrase
    if passphrase_file:
        try:
            mode = os.stat(passphrase_file).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise EngineError('passphrase file %s is readable by others (mode %o)' % (
                    passphrase_file, stat.S_IMODE(mode)), hint='chmod 600 %s' % passphrase_file)
            with open(passphrase_file) as handle:
                value = handle.read().rstrip('\r\n')
        except (IOError, OSError) as exc:
            raise EngineError('cannot read passphrase file %s: %s' % (passphrase_file, exc.strerror or exc))
        if not value:
            raise EngineError('passphrase file %s is empty' % passphrase_file)
        return value
    if passphrase_env:
        value = os.environ.get(passphrase_env, '')
        if not value:
            raise EngineError('environment variable %s holds no passphrase' % passphrase_env)
        return value
    return None


def _base(gpg, homedir):
    return [gpg, '--homedir', homedir, '--batch', '--yes', '--no-tty', '--quiet',
            '--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--no-symkey-cache']


def encrypt_argv(gpg, homedir, source, target):
    # The dump is already compressed: gpg's own compression would only cost time.
    return _base(gpg, homedir) + ['--symmetric', '--cipher-algo', 'AES256', '--compress-algo', 'none',
                                  '--output', target, source]


def decrypt_argv(gpg, homedir, source, target):
    return _base(gpg, homedir) + ['--decrypt', '--output', target, source]


class Gpg(object):
    """gpg through a Runner with a throw-away home directory (owned by `owner` when run as root)."""

    def __init__(self, runner, passphrase, owner=None, gpg=None, chown=None):
        if not passphrase:
            raise EngineError('encryption needs a passphrase (a 0600 file or an environment variable)')
        self.runner = runner
        self.passphrase = passphrase
        self.owner = owner
        self._gpg = gpg
        self._chown = chown
        self.homedir = None

    @property
    def gpg(self):
        if self._gpg is None:
            self._gpg = self.runner.binary('gpg', 'gnupg')
        return self._gpg

    def __enter__(self):
        remove_stale_homes(self.runner)
        base = tempfile.gettempdir()
        while True:
            path = os.path.join(base, '%s%d-%d' % (HOME_PREFIX, os.getpid(), next(_homes)))
            try:
                os.mkdir(path, 0o700)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise
            break
        self.homedir = path
        os.chmod(self.homedir, 0o700)
        if self._chown:
            self._chown(self.homedir)
        return self

    def __exit__(self, *exc):
        _kill_agent(self.runner, self.homedir)
        shutil.rmtree(self.homedir, ignore_errors=True)
        return False

    def encrypt(self, source, target=None):
        target = target or source + GPG_SUFFIX
        self.runner.run(encrypt_argv(self.gpg, self.homedir, source, target), data=self.passphrase,
                        what='gpg encryption of %s' % os.path.basename(source))
        return target

    def decrypt(self, source, target):
        result = self.runner.run(decrypt_argv(self.gpg, self.homedir, source, target), data=self.passphrase,
                                 check=False)
        if result.rc != 0:
            if os.path.exists(target):
                os.unlink(target)
            raise EngineError('gpg could not decrypt %s' % source, argv=result.argv, rc=result.rc,
                              stdout=result.stdout, stderr=result.stderr,
                              hint='check the passphrase (gpg says "Bad session key" for a wrong one)')
        return target
