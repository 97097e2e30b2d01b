# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running external programs: the one process boundary of the engine.

Everything the engine does to a host goes through a Runner: argv lists only (never a shell),
secrets only through the environment, every command recorded so that callers can show what ran.
The Ansible modules hand in AnsibleModule.run_command; the host command hands in subprocess.
No Ansible imports here: this file is also installed on managed hosts as part of `pgops-backup`.
"""

import os
import shutil
import subprocess
import sys
import time

# Where distro packages put the binaries the engine calls; a root cron/systemd PATH may lack sbin.
EXTRA_PATHS = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')


class EngineError(Exception):
    """An error a person can act on: what failed, the command, its output and what to do next."""

    def __init__(self, msg, argv=None, rc=None, stdout='', stderr='', hint=None, code=None):
        super(EngineError, self).__init__(msg)
        self.msg = msg
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.hint = hint
        self.code = code

    def as_dict(self):
        out = {'msg': self.full_message()}
        if self.argv is not None:
            out['cmd'] = ' '.join(self.argv)
            out['rc'] = self.rc
            out['stdout'] = self.stdout
            out['stderr'] = self.stderr
        if self.code is not None:
            out['error_code'] = self.code
        if self.hint:
            out['hint'] = self.hint
        return out

    def full_message(self):
        parts = [self.msg]
        if self.argv is not None:
            parts.append('command: %s (rc=%s)' % (' '.join(self.argv), self.rc))
            detail = (self.stderr or self.stdout or '').strip()
            if detail:
                parts.append('output: %s' % detail[-2000:])
        if self.hint:
            parts.append('next step: %s' % self.hint)
        return '; '.join(parts)


class Result(object):
    def __init__(self, argv, rc, stdout, stderr, seconds):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds


def subprocess_run(argv, env=None, data=None, stream=None):
    """Run argv without a shell. With `stream`, output lines are passed to it as they arrive."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if stream is None:
        proc = subprocess.run(argv, input=data, env=full_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    proc = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        stream(line.rstrip('\n'))
    proc.wait()
    return proc.returncode, ''.join(lines), ''


def system_which(name):
    path = os.pathsep.join([os.environ.get('PATH', '')] + list(EXTRA_PATHS))
    return shutil.which(name, path=path)


class Runner(object):
    """Runs commands as `run_as` (when called as root), records them, raises EngineError on failure.

    run: callable(argv, env, data) -> (rc, stdout, stderr)
    which: callable(name) -> absolute path or None
    """

    def __init__(self, run=subprocess_run, which=system_which, run_as=None, env=None, stream=None):
        self._run = run
        self._which = which
        self.run_as = run_as
        self.env = dict(env or {})
        self.stream = stream
        self.commands = []

    def as_user(self, user):
        """A Runner for the same host that runs as `user` (None: the calling user) and records its
        commands in this Runner's list."""
        other = Runner(run=self._run, which=self._which, run_as=user, env=self.env, stream=self.stream)
        other.commands = self.commands
        return other

    def binary(self, name, package=None):
        path = self._which(name)
        if not path:
            raise EngineError('required program %r was not found on this host' % name,
                              hint='install the %s package' % (package or name))
        return path

    def _as_user(self, argv):
        if self.run_as and os.geteuid() == 0 and self.run_as != 'root':
            return [self.binary('runuser', 'util-linux'), '-u', self.run_as, '--'] + list(argv)
        return list(argv)

    def run(self, argv, check=True, data=None, env=None, stream=False, what=None):
        argv = [str(a) for a in argv]
        self.commands.append(' '.join(argv))
        full_env = dict(self.env)
        full_env.update(env or {})
        started = time.time()
        if stream and self.stream is not None:
            rc, out, err = self._run(self._as_user(argv), env=full_env, data=data, stream=self.stream)
        else:
            rc, out, err = self._run(self._as_user(argv), env=full_env, data=data)
        result = Result(argv, rc, out or '', err or '', time.time() - started)
        if check and rc != 0:
            raise EngineError('%s failed' % (what or os.path.basename(argv[0])), argv=argv, rc=rc,
                              stdout=result.stdout, stderr=result.stderr)
        return result


def progress_printer(prefix='pgops-backup'):
    """A stream callback that shows long work to a person watching a terminal or the journal."""
    def _print(line):
        sys.stderr.write('%s: %s\n' % (prefix, line))
        sys.stderr.flush()
    return _print
