"""A benchmark host: a podman container from the project's test host image plus an SSH server, and
commands in it.

Commands of the bench itself run with `podman exec`; timed commands measure themselves inside the
container (bash EPOCHREALTIME around the command), so podman's own start-up cost is not part of a
figure. Ansible reaches the hosts over SSH (see fleet.py), as it reaches real database hosts.
"""

import hashlib
import subprocess
import time

BASE_IMAGE = 'localhost/pgops-host:trixie'
IMAGE = 'localhost/pgops-bench-host:trixie'
MARK = 'BENCH_CLOCK'
# The bench image: the test host image (tests/utils/build-image.sh) plus openssh-server, root login
# by key only. Rebuilt when the base image or this recipe changes.
IMAGE_RECIPE = r"""set -e
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
apt-get -y -qq install --no-install-recommends openssh-server >/dev/null
apt-get clean
rm -f /usr/sbin/policy-rc.d
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' >/etc/ssh/sshd_config.d/pgops-bench.conf
systemctl enable ssh.service >/dev/null 2>&1 || true
install -d -m 0700 /root/.ssh
"""


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


def ensure_image(log=lambda text: None):
    """Build IMAGE from BASE_IMAGE when it is missing or out of date (about 15 s, needs the mirror)."""
    base_id = podman('image', 'inspect', '--format', '{{.Id}}', BASE_IMAGE).stdout.strip()
    recipe = hashlib.sha256((base_id + IMAGE_RECIPE).encode()).hexdigest()[:16]
    current = podman('image', 'inspect', '--format', '{{ index .Labels "pgops.bench.recipe" }}', IMAGE, check=False)
    if current.returncode == 0 and current.stdout.strip() == recipe:
        return False
    log('building %s from %s (openssh-server)' % (IMAGE, BASE_IMAGE))
    builder = 'pgops-bench-image-build'
    podman('rm', '-f', '-t', '0', builder, check=False)
    try:
        podman('run', '--name', builder, '--entrypoint', '/bin/bash', BASE_IMAGE, '-c', IMAGE_RECIPE,
               timeout=900)
        podman('commit', '-q', '--change', 'CMD ["/sbin/init"]', '--change', 'ENTRYPOINT []',
               '--change', 'STOPSIGNAL SIGRTMIN+3', '--change', 'LABEL pgops.bench.recipe=%s' % recipe,
               builder, IMAGE)
    finally:
        podman('rm', '-f', '-t', '0', builder, check=False)
    return True


class Host:
    def __init__(self, name, image=IMAGE, authorized_key=None):
        self.name = name
        self.image = image
        self.authorized_key = authorized_key   # public key file mounted as root's authorized_keys

    # --- life cycle ------------------------------------------------------------------------------

    def start(self):
        """Start a fresh container (any old one of this name is removed first); do not wait."""
        podman('rm', '-f', '-t', '0', self.name, check=False)
        mounts = ['-v', '%s:/root/.ssh/authorized_keys:ro' % self.authorized_key] if self.authorized_key else []
        podman('run', '-d', '--name', self.name, '--hostname', self.name, '--cap-add', 'SYS_ADMIN', *mounts,
               self.image)

    def wait_ready(self, timeout=180):
        """Wait until systemd has booted, PostgreSQL accepts connections and sshd listens."""
        self.sh('systemctl is-system-running --wait || true', timeout=timeout)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.sh('pg_isready -q && { ! systemctl cat ssh.service >/dev/null 2>&1 || '
                       'systemctl is-active -q ssh.service; }', check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError('%s: PostgreSQL or sshd did not come up in %d s' % (self.name, timeout))

    def address(self):
        """The container's IP address on the podman network (Ansible connects there over SSH)."""
        address = podman('inspect', '--format', '{{.NetworkSettings.IPAddress}}', self.name).stdout.strip()
        if not address:
            raise RuntimeError('%s: no IP address' % self.name)
        return address

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
