# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpg symmetric encryption of dump files, passphrase on stdin only.

The passphrase is read from a 0600 file or an environment variable by the engine and handed to
gpg on its standard input (`--passphrase-fd 0`): it is never in argv, never in a file gpg opens,
and `--no-symkey-cache` keeps it out of gpg-agent's cache. gpg runs with a private, temporary
home directory whose agent is stopped afterwards, so nothing outlives the job.
"""

import os
import shutil
import stat
import tempfile

from .process import EngineError

GPG_SUFFIX = '.gpg'
PASSPHRASE_ENV = 'PGOPS_DUMP_PASSPHRASE'


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
        self.homedir = tempfile.mkdtemp(prefix='pgops-gnupg-')
        os.chmod(self.homedir, 0o700)
        if self._chown:
            self._chown(self.homedir)
        return self

    def __exit__(self, *exc):
        try:
            gpgconf = self.runner.binary('gpgconf', 'gnupg')
            self.runner.run([gpgconf, '--homedir', self.homedir, '--kill', 'gpg-agent'], check=False)
        except EngineError:
            pass
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
