"""Helpers shared by the scenarios' testinfra files: which hosts to test, and the run logs."""

import os
import re

import yaml


def molecule_hosts():
    """podman:// URLs of the scenario's instances (faster than testinfra's ansible backend)."""
    with open(os.environ['MOLECULE_INVENTORY_FILE']) as handle:
        inventory = yaml.safe_load(handle) or {}
    return ['podman://%s' % name for name in sorted((inventory.get('all') or {}).get('hosts') or {})]


def run_log(step, kind='log'):
    """Output of a molecule step kept by tests/utils/molecule-scenario.sh: kind 'log' is Ansible's
    own log of the step, 'out' what molecule printed."""
    path = os.path.join(os.environ['PGOPS_LOG_DIR'], '%s-%s.%s' % (os.environ['MOLECULE_SCENARIO_NAME'], step, kind))
    with open(path, errors='replace') as handle:
        return handle.read()


def recap(log):
    """{host: {'ok': n, 'changed': n, 'failed': n, ...}} from a PLAY RECAP (colours or not: molecule
    forces them on for the playbooks the tests run)."""
    hosts = {}
    plain = re.sub(r'\x1b\[[0-9;]*m', '', log)
    for name, counts in re.findall(r'(\S+)\s+:\s+(ok=\d+.*)$', plain, re.MULTILINE):
        hosts[name] = dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', counts))
    return hosts


def psql(host, sql, db='postgres'):
    """Run SQL as postgres on a test host and return the unaligned, tuples-only output."""
    cmd = host.run('runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s', db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def run_playbook(playbook, *extra_args):
    """Run one of the collection's playbooks against the scenario's hosts, as an operator would.
    Returns (rc, output)."""
    import subprocess
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'],
            os.path.join(root, 'playbooks', playbook), '-e', 'pgops_target=all'] + list(extra_args)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout
