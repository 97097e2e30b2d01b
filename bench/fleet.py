"""Ansible: the site playbook re-run on a configured host (wall time, changed count) and the first
converge of 1, 4 and 8 fresh hosts (light containers from the same image, no data) in one play."""

import json
import os
import re
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from host import Host
from measure import Group, interleave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


class Ansible:
    """ansible-playbook against podman containers; inventory and passphrase in a private work dir."""

    def __init__(self, work_dir):
        self.work_dir = work_dir
        os.makedirs(work_dir, mode=0o700, exist_ok=True)
        self.secrets = os.path.join(work_dir, 'secrets.yml')
        with open(os.open(self.secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as handle:
            handle.write('pgbackrest_cipher_pass: "%s"\n' % secrets.token_urlsafe(32))

    def inventory(self, hosts, name):
        path = os.path.join(self.work_dir, '%s.yml' % name)
        lines = ['postgresql:', '  hosts:']
        for host in hosts:
            lines += ['    %s:' % host, '      ansible_connection: containers.podman.podman',
                      '      ansible_python_interpreter: /usr/bin/python3']
        with open(path, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        return path

    def playbook(self, playbook, hosts, name, extra=None, log_name=None):
        """Run a playbook; returns (seconds, {host: changed}); raises with the log tail on failure."""
        inventory = self.inventory(hosts, name)
        argv = ['ansible-playbook', '-i', inventory, '-e', '@' + self.secrets, '-f', str(max(5, len(hosts))),
                os.path.join(ROOT, 'playbooks', playbook)]
        if extra:
            argv += ['-e', json.dumps(extra)]
        log_path = os.path.join(self.work_dir, '%s.log' % (log_name or name))
        started = time.monotonic()
        result = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.monotonic() - started
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
                  'full backup and timers. Ratio 1.0 per host would be perfect parallelism; N would be serial.')
    for count in counts:
        group.add('hosts_%d' % count, '%d host%s' % (count, '' if count == 1 else 's'))

    def step_for(count):
        def step(index):
            hosts = [Host('%s-%d' % (prefix, n + 1)) for n in range(count)]
            try:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(lambda h: h.start(), hosts))
                    list(pool.map(lambda h: h.wait_ready(), hosts))
                seconds, recap = ansible.playbook('site.yml', [h.name for h in hosts], 'converge-%d' % count,
                                                  log_name='converge-%d-run%d' % (count, index + 1))
            finally:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(lambda h: h.remove(), hosts))
            return {'seconds': seconds, 'extra': {'changed_per_host': round(sum(recap.values()) / len(recap), 1)}}
        return step

    interleave(group, runs, [('hosts_%d' % count, step_for(count)) for count in counts])
    return group
