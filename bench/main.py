"""pgops.backup benchmark: one run, one bench host, every comparison of issue 8, interleaved.

Usage (through bench/run.sh, which sets up the environment): main.py [--size-mb N] [--runs N]
[--only KEY,KEY] [--no-explore] [--connection ssh|podman] [--keep] [--hosts 1,4,8] [--converge-runs N]
[--results DIR].
Writes bench/results/DATE/{results.json,results.md,ratios.png} and, when every comparison ran,
copies them to bench/results/latest/. Exits 1 when any run failed; timings are never asserted.
"""

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time

import chart
import dataset
import fleet
import logical
import physical
import pitr
import report
from host import Host, ensure_image
from measure import Group, log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ['full', 'restore', 'incr', 'orchestration', 'pitr', 'pg_dump', 'site_rerun', 'converge']
NOTES = [
    'Everything runs in one podman container (Debian 13, PostgreSQL 17, pgBackRest from Debian) on the machine '
    'named above; the data fits in the page cache, so the figures are CPU and memory bound, as on a host whose '
    'database is hot. Other work on the machine adds noise: read the ratios, not the seconds.',
    'All pgBackRest runs use the collection\'s configuration file (repository encrypted with aes-256-cbc, '
    'archive-async, start-fast); only compress-type, compress-level and process-max differ for the guides\' '
    'settings. Each run writes into a fresh repository path (--repo1-path) that shares the main archive, '
    'so backups wait for their WAL like in production; expire is off there (--no-expire-auto).',
    'Ansible reaches every host over SSH as root with a key, pipelining on and ansible\'s default '
    'ControlMaster/ControlPersist (one ControlPath directory per playbook run), as it would reach real '
    'database hosts; forks = max(5, hosts). The podman connection plugin cannot pipeline (3-4 podman '
    'exec/mount per task and host): with it the 2-core controller, not the hosts, set the pace.',
    'Incremental backups in pgBackRest are file based (1 GiB segments) unless block incremental is enabled: '
    'a table file with any changed row is copied whole, so an update spread over every big table copies '
    'most of the database. Block incremental (repo-bundle + repo-block) is not a collection default.',
]


def machine():
    cpu = ''
    with open('/proc/cpuinfo') as handle:
        for line in handle:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    with open('/proc/meminfo') as handle:
        mem_kb = int(handle.readline().split()[1])
    cores = os.cpu_count()
    return {'hostname': platform.node(), 'cpu': cpu, 'cores': cores, 'memory_gb': round(mem_kb / 1048576, 1),
            'kernel': platform.release(), 'os': platform.freedesktop_os_release().get('PRETTY_NAME', '')}


def versions(host):
    def first_line(script):
        return host.sh(script, check=False).stdout.strip().splitlines()[0] if host else ''
    ansible = subprocess.run(['ansible', '--version'], capture_output=True, text=True).stdout.splitlines()
    return {'postgresql': first_line('psql --version').split()[2] if host else '',
            'pgbackrest': first_line('pgbackrest version').split()[-1] if host else '',
            'ansible-core': ansible[0].split()[-1].rstrip(']') if ansible else ''}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size-mb', type=int, default=1536, help='database size to generate (default 1536)')
    parser.add_argument('--runs', type=int, default=2, help='runs per configuration (at least 2)')
    parser.add_argument('--only', default=','.join(PHASES), help='comparisons to run: ' + ','.join(PHASES))
    parser.add_argument('--hosts', default='1,4,8', help='host counts of the converge comparison')
    parser.add_argument('--converge-runs', type=int, default=None, help='runs of each converge (default: --runs)')
    parser.add_argument('--name', default='pgops-bench', help='container name of the bench host')
    parser.add_argument('--no-explore', dest='explore', action='store_false',
                        help='leave out the lz4, zst level 1 and uncompressed full backups (rows that show '
                             'where the full backup\'s time goes)')
    parser.add_argument('--explore-noenc', action='store_true',
                        help='add full backups without repository encryption (not quite the same work)')
    parser.add_argument('--connection', choices=('ssh', 'podman'), default='ssh',
                        help='how ansible reaches the containers (default ssh, with pipelining)')
    parser.add_argument('--keep', action='store_true', help='keep the bench host afterwards (debugging)')
    parser.add_argument('--results', default=os.path.join(ROOT, 'bench', 'results'))
    args = parser.parse_args(argv)
    args.only = [p for p in args.only.split(',') if p]
    unknown = set(args.only) - set(PHASES)
    if unknown or args.runs < 1:
        parser.error('unknown comparison(s): %s' % ', '.join(sorted(unknown)) if unknown else '--runs >= 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    stamp = datetime.datetime.now(datetime.timezone.utc)
    work = os.path.join(ROOT, '.cache', 'bench')
    ansible = fleet.Ansible(work, args.connection)
    groups, notes, failed_steps = [], list(NOTES), []
    meta = {'date': stamp.strftime('%Y-%m-%d %H:%M UTC'), 'size_mb_requested': args.size_mb, 'runs': args.runs,
            'machine': machine(), 'database_bytes': None, 'pgdata_bytes': None, 'setup_seconds': {},
            'phase_seconds': {}, 'connection': args.connection}
    host = Host(args.name, authorized_key=ansible.public_key)
    vers = {}

    def phase(key, function):
        if key not in args.only:
            return None
        log('comparison: %s' % key)
        t0 = time.time()
        try:
            result = function()
        except Exception as exc:  # a setup step of the comparison failed: recorded, the bench goes on
            log('comparison %s FAILED: %s' % (key, exc))
            failed_steps.append('%s: %s' % (key, str(exc)[-1500:]))
            return None
        finally:
            meta['phase_seconds'][key] = round(meta['phase_seconds'].get(key, 0) + time.time() - t0, 1)
        for group in (result if isinstance(result, list) else [result]):
            if isinstance(group, Group):
                groups.append(group)
        return result

    needs_host = set(args.only) - {'converge'}
    try:
        t0 = time.time()
        if ensure_image(log):
            meta['setup_seconds']['bench_image'] = round(time.time() - t0, 1)
        if needs_host:
            log('bench host %s: starting' % args.name)
            t0 = time.time()
            host.start()
            host.wait_ready()
            meta['setup_seconds']['start_host'] = round(time.time() - t0, 1)
            t0 = time.time()
            meta['database_bytes'] = dataset.load(host, args.size_mb)
            meta['setup_seconds']['load_data'] = round(time.time() - t0, 1)
            log('loaded %s in %.0f s' % (report.human(meta['database_bytes']), time.time() - t0))
            seconds, recap = ansible.playbook('site.yml', [args.name], 'bench', log_name='site-first')
            meta['setup_seconds']['first_converge_with_data'] = round(seconds, 1)
            meta['first_converge_changed'] = recap[args.name]
            log('site.yml first converge: %.0f s, changed=%d' % (seconds, recap[args.name]))
            physical.prepare(host)
            meta['pgdata_bytes'] = host.du('--exclude=pg_wal %s' % physical.PGDATA)
            vers = versions(host)
            bases = {}

            def full():
                group, found = physical.full_backup(host, args.runs, args.explore, args.explore_noenc)
                bases.update(found)
                return group
            phase('full', full)
            if ('restore' in args.only or 'incr' in args.only) and not bases:
                for name in physical.CONFIGS:   # bases for restore/incr when `full` is not run
                    repo = physical.fresh_repo(host, 'base-' + name)
                    host.sh(physical.backup_cmd(repo, physical.CONFIGS[name][1]), user='postgres')
                    bases[name] = repo
            phase('restore', lambda: physical.restore(host, args.runs, bases))
            phase('incr', lambda: physical.incremental(
                host, args.runs, bases, lambda: 'Change: %d rows updated in the big tables (5%% each) and 5%% '
                'of the small tables rewritten.' % dataset.change(host)))
            phase('orchestration', lambda: physical.orchestration(host, args.runs))
            phase('pitr', lambda: pitr.run(host, args.runs, lambda extra: ansible.playbook(
                'pitr.yml', [args.name], 'bench', extra=extra, log_name='pitr-%s' % extra['pitr_scratch_name'])[0]))
            dump_files = {}

            def dumps():
                group, files = logical.dumps(host, args.runs)
                dump_files.update(files)
                return group
            phase('pg_dump', dumps)
            if dump_files:
                phase('pg_dump', lambda: logical.restores(host, args.runs, dump_files))
            phase('site_rerun', lambda: fleet.idempotence(ansible, args.name, args.runs))
        if not args.keep:
            host.remove()
        counts = [int(c) for c in args.hosts.split(',') if c]
        phase('converge', lambda: fleet.converge(ansible, args.name + '-c', counts,
                                                 args.converge_runs or args.runs))
    finally:
        if not args.keep:
            host.remove()

    meta['versions'] = vers or versions(None)
    m = meta['machine']
    meta['machine_line'] = '%s, %s, %d cores, %.0f GB RAM, %s, kernel %s' % (
        m['hostname'], m['cpu'], m['cores'], m['memory_gb'], m['os'], m['kernel'])
    meta['machine_short'] = '%d cores %s' % (m['cores'], m['cpu'][:40])
    meta['size_label'] = '%s database' % report.human(meta['database_bytes'] or args.size_mb * 1048576)
    meta['total_seconds'] = round(time.time() - started, 1)
    if os.environ.get('BENCH_SETUP_SECONDS'):   # bench/run.sh: tests/utils/setup.sh and the venv
        meta['setup_seconds']['run_sh_setup'] = int(os.environ['BENCH_SETUP_SECONDS'])
    summaries = [g.summary() for g in groups]
    for step in failed_steps:
        notes.append('FAILED step %s' % step.splitlines()[0][:300])
    data = {'meta': meta, 'groups': summaries, 'acceptance': report.acceptance(summaries), 'notes': notes,
            'failed_steps': failed_steps}
    directory = os.path.join(args.results, stamp.strftime('%Y-%m-%dT%H%MZ'))
    report.write(directory, data)
    chart.draw(data, os.path.join(directory, 'ratios.png'))
    # bench/results/latest/ (committed) holds the newest run that covered every comparison.
    latest = os.path.join(args.results, 'latest')
    if set(args.only) == set(PHASES):
        shutil.rmtree(latest, ignore_errors=True)
        shutil.copytree(directory, latest)
    else:
        latest = 'not updated: not every comparison ran'
    sys.stdout.write(report.markdown(data))
    log('results in %s (latest: %s); %.0f s in all' % (directory, latest, meta['total_seconds']))
    failed = failed_steps or any(g.failed() for g in groups)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
