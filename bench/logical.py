"""pg_dump: the collection's job (`pgops-backup dump`, the pg_dump_job defaults: custom format,
compression auto = zstd level 3 on PostgreSQL 17, snapshot row counts, pg_restore --list check,
checksums, manifest) against `pg_dump -Fc -Z 9`; then pg_restore of each dump into a separate
cluster without archiving (so the restore's WAL is not shipped into the repository meanwhile)."""

from measure import Group, interleave
from physical import BENCH

RESTORE_PORT = 5440


def dumps(host, runs):
    group = Group('pg_dump', 'Logical backup of database bench', 'z9')
    group.add('job', 'pgops-backup dump (pg_dump_job defaults: -Fc, zstd:3, verified, manifest)')
    group.add('z9', 'pg_dump -Fc -Z 9')
    kept = {}

    def job(index):
        dest = '%s/dump-job-%d' % (BENCH, index)
        host.sh('rm -rf %s' % dest)
        seconds, _ = host.timed('pgops-backup --quiet dump --job bench --destination %s --database bench' % dest,
                                what='pgops-backup dump')
        path = host.sh('ls -d %s/bench/*/' % dest).stdout.split()[0].rstrip('/')
        kept.setdefault('job', []).append(dest)
        files = host.sh('ls %s' % path).stdout.split()
        dump_file = [f for f in files if f.endswith('.dump')]
        return {'seconds': seconds, 'size_bytes': host.du(path),
                'extra': {'dump_file': '%s/%s' % (path, dump_file[0]) if dump_file else path}}

    def z9(index):
        dest = '%s/dump-z9-%d.dump' % (BENCH, index)
        seconds, _ = host.timed('pg_dump -Fc -Z 9 -f %s bench' % dest, user='postgres', what='pg_dump -Z 9')
        kept.setdefault('z9', []).append(dest)
        return {'seconds': seconds, 'size_bytes': host.du(dest), 'extra': {'dump_file': dest}}

    interleave(group, runs, [('job', job), ('z9', z9)])
    files = {}
    for name in ('job', 'z9'):
        good = [r for r in group.runs[name] if not r.get('error')]
        if good:
            files[name] = good[-1]['extra']['dump_file']
        for path in kept.get(name, [])[:-1]:
            host.sh('rm -rf %s' % path)
    return group, files


def restores(host, runs, files):
    group = Group('pg_restore', 'pg_restore -j 2 of each dump into an empty database (separate cluster)', 'z9',
                  'createdb + pg_restore -j 2 into a second cluster on port %d without archiving.' % RESTORE_PORT)
    group.add('job', 'pg_restore of the job\'s dump (zstd:3)')
    group.add('z9', 'pg_restore of the pg_dump -Fc -Z 9 dump')
    host.sh('pg_lsclusters -h | grep -q "^17 benchrestore " || pg_createcluster 17 benchrestore -p %d --start '
            '>/dev/null' % RESTORE_PORT, what='pg_createcluster')

    def step_for(name):
        def step(index):
            seconds, _ = host.timed('createdb -p {p} restored && pg_restore -p {p} -d restored -j 2 {f}'
                                    .format(p=RESTORE_PORT, f=files[name]), user='postgres', what='pg_restore ' + name)
            return {'seconds': seconds}
        return step

    interleave(group, runs, [(name, step_for(name)) for name in ('job', 'z9') if name in files],
               between=lambda name: host.sh('dropdb -p %d --if-exists restored' % RESTORE_PORT, user='postgres'))
    host.sh('pg_dropcluster 17 benchrestore --stop', check=False)
    return group
