"""Point-in-time recovery, command to writable database, of the same backup to the same target:
the collection (playbooks/pitr.yml restoring elsewhere, and `pgops-backup pitr restore --elsewhere`)
against a bare `pgbackrest restore` + pg_ctl start + replay until promoted."""

import json
import time

from measure import Group, interleave
from physical import BENCH, wait_archived

BARE_PORT = 5499
SCRATCH_BASE = '/var/lib/postgresql/pgops-scratch'


def make_target(host):
    """Write rows before and after a target time; archive the WAL. Returns (target, backup label)."""
    host.psql('CREATE TABLE IF NOT EXISTS bench_pitr (id serial PRIMARY KEY, note text, at timestamptz DEFAULT now());'
              "INSERT INTO bench_pitr (note) SELECT 'before ' || g FROM generate_series(1, 1000) g;")
    time.sleep(1.2)
    target = host.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.2)
    host.psql("INSERT INTO bench_pitr (note) SELECT 'after ' || g FROM generate_series(1, 1000) g;")
    host.sh('pgbackrest --stanza=main --log-level-console=warn check', user='postgres', what='pgbackrest check')
    wait_archived(host)
    info = json.loads(host.sh('pgbackrest --stanza=main --output=json info', user='postgres').stdout)
    label = info[0]['backup'][-1]['label']
    return target, label


def run(host, runs, ansible):
    """ansible(extra_vars: dict) -> (seconds, changed) runs playbooks/pitr.yml on the bench host."""
    group = Group('pitr', 'Point-in-time recovery to a writable database (same backup, same target time)', 'bare',
                  'Target: a time between two committed batches; the newest full backup of the main repository.')
    group.add('playbook', 'ansible-playbook playbooks/pitr.yml (pitr_destination=elsewhere): preflight, restore, '
              'verify, promote')
    group.add('command', 'pgops-backup pitr restore --elsewhere (same engine, on the host)')
    group.add('bare', 'pgbackrest restore --type=time --target-action=promote + pg_ctl start + wait until promoted')
    target, label = make_target(host)
    group.note += ' Target %s, backup set %s.' % (target, label)
    expected = 1000

    def check(port):
        rows = int(host.psql("SELECT count(*) FROM bench_pitr WHERE note LIKE 'before %'", port=port))
        after = int(host.psql("SELECT count(*) FROM bench_pitr WHERE note LIKE 'after %'", port=port))
        writable = host.psql('SELECT NOT pg_is_in_recovery()', port=port)
        if rows != expected or after != 0 or writable != 't':
            raise RuntimeError('port %d: %d rows before, %d after the target, writable %s'
                               % (port, rows, after, writable))

    def scratch_port(name):
        marker = json.loads(host.sh('cat %s/%s.pgops-scratch.json' % (SCRATCH_BASE, name)).stdout)
        return int(marker['port'])

    def playbook(index):
        name = 'benchp%d' % index
        seconds = ansible({'pitr_time': target, 'pitr_destination': 'elsewhere', 'pitr_scratch_name': name,
                           'pitr_scratch_state': 'running'})
        check(scratch_port(name))
        return {'seconds': seconds}

    def command(index):
        name = 'benchc%d' % index
        seconds, _ = host.timed("pgops-backup --quiet pitr restore --stanza main --time '%s' --elsewhere "
                                '--scratch-name %s --scratch-state running' % (target, name), what='pgops-backup pitr restore')
        check(scratch_port(name))
        return {'seconds': seconds}

    data = '%s/pitr-bare' % BENCH

    def bare(index):
        host.sh('rm -rf {d} {d}.log && mkdir -m 0700 {d}'.format(d=data), user='postgres')
        seconds, _ = host.timed("""
pgbackrest --stanza=main --pg1-path={d} --set={label} --type=time '--target={target}' --target-action=promote \
  --archive-mode=off --log-level-console=warn restore
printf "port = {port}\\nlisten_addresses = ''\\nunix_socket_directories = '/var/run/postgresql'\\narchive_mode = off\\n" \
  > {d}/postgresql.conf
echo 'local all all peer' > {d}/pg_hba.conf
: > {d}/pg_ident.conf
/usr/lib/postgresql/17/bin/pg_ctl start -D {d} -l {d}.log -w -t 3600 >/dev/null
until [ "$(psql -XAt -p {port} -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do sleep 0.1; done
""".format(d=data, label=label, target=target, port=BARE_PORT), user='postgres', what='bare PITR')
        check(BARE_PORT)
        return {'seconds': seconds}

    def cleanup(name):
        if name == 'bare':
            host.sh('/usr/lib/postgresql/17/bin/pg_ctl stop -D {d} -m immediate -w >/dev/null 2>&1; '
                    'rm -rf {d} {d}.log'.format(d=data), user='postgres')
        else:
            for scratch in host.sh('pgops-backup --quiet pitr scratch-list', check=False).stdout.split():
                if scratch.startswith('bench'):
                    host.sh('pgops-backup --quiet pitr scratch-remove %s --stanza main' % scratch)

    interleave(group, runs, [('playbook', playbook), ('command', command), ('bare', bare)], between=cleanup)
    return group
