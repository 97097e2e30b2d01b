# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One lock per PostgreSQL cluster for the jobs that change it or compete for it.

In-place PITR, standby rebuild, restore drills and dump restores take it, whichever door
(module or host command) starts them, so that two recoveries never run on one cluster at once.

The lock is an flock(2) on a small file: the kernel releases it when its holder dies, so a
lock left by a crash (kill -9, a reboot) never blocks the next run. The file also says who
holds it (pid, job, start, user) so a refusal can name the first run; a file naming a dead
holder is reported as stale and taken over.
"""

import errno
import fcntl
import json
import os
import pwd
import re

from . import clock
from .process import EngineError

DEFAULT_LOCK_DIR = '/run/pgops-backup/locks'
_UNSAFE = re.compile(r'[^A-Za-z0-9_.-]+')


class ClusterBusy(EngineError):
    """Another job holds the cluster's lock."""


def lock_path(cluster, lock_dir=DEFAULT_LOCK_DIR):
    """'17/main' -> <lock_dir>/cluster-17-main.lock"""
    name = _UNSAFE.sub('-', str(cluster)).strip('-.') or 'cluster'
    return os.path.join(lock_dir, 'cluster-%s.lock' % name)


def who_am_i():
    """The person behind the run: sudo's caller when there is one."""
    user = os.environ.get('SUDO_USER')
    if user:
        return user
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def read_holder(path):
    """What the lock file says about its last holder, or None."""
    try:
        with open(path) as handle:
            data = json.loads(handle.read() or 'null')
    except (IOError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(holder):
    if not holder:
        return 'another job'
    return '%s (pid %s, started %s by %s)' % (holder.get('job', 'a job'), holder.get('pid', '?'),
                                              holder.get('started_at', '?'), holder.get('user', '?'))


class ClusterLock(object):
    """with ClusterLock('17/main', job='pitr'): ... - refused at once when another job holds it.

    `stale` is set after acquiring when the file named a holder that is gone (cleared, reported).
    `owner_uid`/`owner_gid` are applied to a new lock directory and file, so that root (the modules)
    and postgres (the timers) share one lock.
    """

    def __init__(self, cluster, job, lock_dir=DEFAULT_LOCK_DIR, owner_uid=None, owner_gid=None,
                 details=None):
        self.cluster = cluster
        self.job = job
        self.lock_dir = lock_dir
        self.path = lock_path(cluster, lock_dir)
        self.owner_uid = owner_uid
        self.owner_gid = owner_gid
        self.details = dict(details or {})
        self.stale = None
        self._fd = None

    def _chown(self, path):
        if self.owner_uid is not None and os.geteuid() == 0:
            os.chown(path, self.owner_uid, -1 if self.owner_gid is None else self.owner_gid)

    def _cannot(self, exc):
        # Whatever the door (module, host command, playbook): an error naming the place and the next step,
        # never a traceback. Nothing was changed yet: the lock is the first thing a job takes.
        return EngineError('cannot take the lock of cluster %s in %s: %s' % (self.cluster, self.lock_dir, exc),
                           code='lock-dir',
                           hint='the host_tools role creates %s at every boot (tmpfiles.d); until it has run, create '
                                'it: install -d -o postgres -g postgres -m 0770 %s; run as root or postgres; nothing '
                                'was changed' % (self.lock_dir, self.lock_dir))

    def _open(self):
        try:
            if not os.path.isdir(self.lock_dir):
                os.makedirs(self.lock_dir, 0o770)
                self._chown(self.lock_dir)
            fresh = not os.path.exists(self.path)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o660)
        except (IOError, OSError) as exc:
            raise self._cannot(exc)
        if fresh:
            self._chown(self.path)
        return fd

    def acquire(self):
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = read_holder(self.path)
            raise ClusterBusy('cluster %s is busy: %s holds its lock; refusing to start %s' % (
                self.cluster, describe(holder), self.job), code='locked',
                hint='wait for it to finish (lock file %s); nothing was changed' % self.path)
        previous = read_holder(self.path)
        if previous and previous.get('pid') and previous.get('pid') != os.getpid() and not previous.get('released'):
            # The kernel dropped the lock with its holder: a crash. Say so, then take over.
            self.stale = previous
            self.stale['alive'] = _pid_alive(int(previous['pid']))
        holder = {'job': self.job, 'pid': os.getpid(), 'user': who_am_i(), 'cluster': str(self.cluster),
                  'started_at': clock.utc_now_text(), 'started_epoch': round(clock.now(), 3)}
        holder.update(self.details)
        try:
            self._write(fd, holder)
        except (IOError, OSError) as exc:
            os.close(fd)  # releases the lock: a lock that cannot say who holds it is not taken
            raise EngineError('cannot write the cluster lock %s: %s' % (self.path, exc.strerror or exc),
                              hint='check the free space and permissions of %s; nothing was changed' % self.lock_dir)
        self._fd = fd
        return self

    @staticmethod
    def _write(fd, holder):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder, sort_keys=True).encode('utf-8'))
        os.fsync(fd)

    def release(self):
        if self._fd is None:
            return
        try:
            holder = read_holder(self.path) or {}
            holder['released'] = True
            self._write(self._fd, holder)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
