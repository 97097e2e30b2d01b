"""Ansible: the site playbook re-run on a configured host (wall time, changed count) and the first
converge of 1, 4 and 8 fresh hosts (light containers from the same image, no data) in one play.

Ansible reaches the containers as it reaches real hosts: SSH as root with a key, pipelining on
(tests/utils/ansible.cfg) and ansible's default ControlMaster/ControlPersist. The podman connection
plugin cannot pipeline (it runs 3-4 `podman exec`/`podman mount` per task and host), which made the
controller's CPU the bottleneck on 2 cores; `--connection podman` measures with it anyway.
"""

import glob
import json
import os
import re
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from host import Host
from measure import Group, interleave, log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


class Ansible:
    """ansible-playbook against the bench containers; inventory, key and passphrase in a private work dir."""

    def __init__(self, work_dir, connection='ssh'):
        self.work_dir = work_dir
        self.connection = connection
        os.makedirs(work_dir, mode=0o700, exist_ok=True)
        self.secrets = os.path.join(work_dir, 'secrets.yml')
        with open(os.open(self.secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            handle.write('pgbackrest_cipher_pass: "%s"\n' % secrets.token_urlsafe(32))
        self.key = os.path.join(work_dir, 'id_ed25519')
        if not os.path.exists(self.key):
            subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'pgops-bench', '-f', self.key],
                           check=True)
        self.public_key = self.key + '.pub'

    def inventory(self, hosts, name):
        path = os.path.join(self.work_dir, '%s.yml' % name)
        lines = ['postgresql:', '  hosts:']
        for host in hosts:
            lines += ['    %s:' % host, '      ansible_python_interpreter: /usr/bin/python3']
            if self.connection == 'podman':
                lines += ['      ansible_connection: containers.podman.podman']
            else:
                lines += ['      ansible_connection: ssh', '      ansible_host: %s' % Host(host).address(),
                          '      ansible_user: root', '      ansible_ssh_private_key_file: %s' % self.key,
                          '      ansible_ssh_common_args: -o StrictHostKeyChecking=no '
                          '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR']
        with open(path, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        return path

    def _close_masters(self, control_dir):
        """End the ControlPersist masters of one playbook run (container addresses get reused)."""
        for socket in glob.glob(os.path.join(control_dir, '*')):
            subprocess.run(['ssh', '-o', 'ControlPath=' + socket, '-O', 'exit', 'bench'], capture_output=True)

    def playbook(self, playbook, hosts, name, extra=None, log_name=None):
        """Run a playbook; returns (seconds, {host: changed}); raises with the log tail on failure."""
        inventory = self.inventory(hosts, name)
        argv = ['ansible-playbook', '-i', inventory, '-e', '@' + self.secrets, '-f', str(max(5, len(hosts))),
                os.path.join(ROOT, 'playbooks', playbook)]
        if extra:
            argv += ['-e', json.dumps(extra)]
        log_path = os.path.join(self.work_dir, '%s.log' % (log_name or name))
        # One ControlPath directory per run: each run opens its own connections, like a fresh
        # ansible-playbook on an operator's machine.
        control_dir = os.path.join(self.work_dir, 'cp', log_name or name)
        subprocess.run(['rm', '-rf', control_dir])
        os.makedirs(control_dir, mode=0o700)
        env = dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir)
        started = time.monotonic()
        try:
            result = subprocess.run(argv, capture_output=True, text=True, env=env)
            seconds = time.monotonic() - started
        finally:
            self._close_masters(control_dir)
        with open(log_path, 'w') as handle:
            handle.write(result.stdout + result.stderr)
        recap = {m.group(1): int(m.group(3)) for m in RECAP.finditer(result.stdout)}
        failed = [m.group(1) for m in RECAP.finditer(result.stdout) if int(m.group(4)) or int(m.group(5))]
        if result.returncode != 0 or failed or set(recap) != set(hosts):
            tail = '\n'.join((result.stdout + result.stderr).strip().splitlines()[-25:])
            raise RuntimeError('%s failed (rc %d, log %s):\n%s' % (playbook, result.returncode, log_path, tail))
        return seconds, recap


def idempotence(ansible, host_name, runs):
    group = Group('site_rerun', 'Site playbook re-run on the configured bench host', 'rerun',
                  'playbooks/site.yml with the role defaults; a converged host should report changed=0.')
    group.add('rerun', 'ansible-playbook playbooks/site.yml, second and later runs')

    def step(index):
        seconds, recap = ansible.playbook('site.yml', [host_name], 'bench', log_name='site-rerun-%d' % index)
        return {'seconds': seconds, 'extra': {'changed': recap[host_name]}}

    interleave(group, runs, [('rerun', step)])
    return group


def converge(ansible, prefix, counts, runs):
    group = Group('converge', 'First converge of fresh hosts in one play (forks = hosts)', 'hosts_1',
                  'Light hosts: the same image, PostgreSQL with no data; each gets archiving, stanza, a first '
                  'full backup and timers. Ratio 1.0 would be perfect parallelism; N would be serial. The '
                  'controller and every host share the same 2 cores here, so this is a floor, not what N '
                  'separate machines would see.')
    for count in counts:
        group.add('hosts_%d' % count, '%d host%s' % (count, '' if count == 1 else 's'))

    # Every configuration of a round gets its own fresh hosts; they are all started (and booted) in one
    # batch at the start of the round, then each set is removed right after its converge. Hosts that
    # wait for their turn are idle (systemd, an idle PostgreSQL).
    booted = {}

    def boot_round(index):
        hosts = {count: [Host('%s-%d-%d' % (prefix, count, n + 1), authorized_key=ansible.public_key)
                         for n in range(count)] for count in counts}
        every = [h for group_hosts in hosts.values() for h in group_hosts]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(every)) as pool:
            list(pool.map(lambda h: h.start(), every))
            list(pool.map(lambda h: h.wait_ready(), every))
        log('converge round %d: %d fresh hosts up in %.0f s' % (index + 1, len(every), time.monotonic() - started))
        booted.update(hosts)

    def remove(hosts):
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            list(pool.map(lambda h: h.remove(), hosts))

    def step_for(count):
        def step(index):
            if count == counts[0]:
                boot_round(index)
            hosts = booted.pop(count)
            try:
                seconds, recap = ansible.playbook('site.yml', [h.name for h in hosts], 'converge-%d' % count,
                                                  log_name='converge-%d-run%d' % (count, index + 1))
            finally:
                remove(hosts)
            return {'seconds': seconds, 'extra': {'changed_per_host': round(sum(recap.values()) / len(recap), 1)}}
        return step

    try:
        interleave(group, runs, [('hosts_%d' % count, step_for(count)) for count in counts])
    finally:
        remove([h for hosts in booted.values() for h in hosts])
    return group
