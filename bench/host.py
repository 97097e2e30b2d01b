"""A benchmark host: a podman container from the project's test host image, and commands in it.

Commands run with `podman exec`; timed commands measure themselves inside the container (bash
EPOCHREALTIME around the command), so podman's own start-up cost is not part of a figure.
"""

import subprocess
import time

IMAGE = 'localhost/pgops-host:trixie'
MARK = 'BENCH_CLOCK'


class CommandFailed(RuntimeError):
    def __init__(self, what, result):
        lines = ((result.stdout or '') + '\n' + (result.stderr or '')).strip().splitlines()
        tail = [line for line in lines if not line.startswith(MARK + ' ')][-15:]
        super().__init__('%s failed (rc %s): %s' % (what, result.returncode, '\n'.join(tail)))
        self.result = result


def podman(*args, check=True, timeout=None, text_input=None):
    result = subprocess.run(['podman'] + list(args), capture_output=True, text=True, timeout=timeout,
                            input=text_input)
    if check and result.returncode != 0:
        raise CommandFailed('podman %s' % ' '.join(args[:3]), result)
    return result


class Host:
    def __init__(self, name, image=IMAGE):
        self.name = name
        self.image = image

    # --- life cycle ------------------------------------------------------------------------------

    def start(self):
        """Start a fresh container (any old one of this name is removed first); do not wait."""
        podman('rm', '-f', '-t', '0', self.name, check=False)
        podman('run', '-d', '--name', self.name, '--hostname', self.name, '--cap-add', 'SYS_ADMIN', self.image)

    def wait_ready(self, timeout=180):
        """Wait until systemd has booted and PostgreSQL accepts connections."""
        self.sh('systemctl is-system-running --wait || true', timeout=timeout)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.sh('pg_isready -q', check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError('%s: PostgreSQL did not come up in %d s' % (self.name, timeout))

    def remove(self):
        podman('rm', '-f', '-t', '0', self.name, check=False)

    # --- commands --------------------------------------------------------------------------------

    def sh(self, script, user=None, check=True, timeout=None, what=None, text_input=None):
        """Run a bash script in the container (as root, or as `user`)."""
        args = ['exec', '-i'] if text_input is not None else ['exec']
        if user:
            args += ['--user', user, '--workdir', '/tmp']
        args += [self.name, 'bash', '-c', 'set -o pipefail\n' + script]
        result = podman(*args, check=False, timeout=timeout, text_input=text_input)
        if check and result.returncode != 0:
            raise CommandFailed(what or script.strip().splitlines()[0][:120], result)
        return result

    def timed(self, script, user=None, what=None, timeout=None):
        """Run a script and return (seconds, result); the clock runs inside the container."""
        wrapped = ('__s=$EPOCHREALTIME\n( %s\n) \n__rc=$?\n__e=$EPOCHREALTIME\n'
                   'echo "%s $__s $__e" >&2\nexit $__rc\n' % (script, MARK))
        result = self.sh(wrapped, user=user, what=what or script.strip().splitlines()[0][:120], timeout=timeout)
        for line in reversed(result.stderr.splitlines()):
            if line.startswith(MARK + ' '):
                _, start, end = line.split()
                return float(end) - float(start), result
        raise RuntimeError('no clock line in the output of %s' % (what or script))

    def psql(self, sql, db='bench', port=5432, what=None, timeout=None):
        """Run SQL as postgres (script on stdin, stop at the first error); return stdout."""
        result = self.sh('psql -XAtq -v ON_ERROR_STOP=1 -p %d -d %s' % (port, db), user='postgres',
                         text_input=sql, what=what or 'psql: ' + sql.strip()[:80], timeout=timeout)
        return result.stdout.strip()

    def du(self, path):
        """Bytes under path (symlinks not followed)."""
        return int(self.sh('du -sb %s | cut -f1' % path).stdout.split()[0])
