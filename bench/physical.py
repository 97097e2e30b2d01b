"""pgBackRest comparisons on the bench host: full backup (collection defaults, the guides' settings,
raw copy of PGDATA), incremental after a ~5% change, restore to a scratch path, and the timer's
service against the bare command.

Every pgBackRest configuration writes into a fresh repository path (--repo1-path, its own stanza-create)
whose archive/ directory is then a symlink to the main repository's archive, so a backup waits for its WAL to be
archived exactly as in the main repository; the main configuration file is never touched. Backups
into bench repositories run with --no-expire-auto (expiring there would remove WAL that the main
repository's backups need); the main repository's own backups expire as configured.
"""

from measure import Group, interleave

BENCH = '/var/lib/pgops-bench'
MAIN_ARCHIVE = '/var/lib/pgbackrest/archive'
PGDATA = '/var/lib/postgresql/17/main'
GUIDES = '--compress-type=gz --compress-level=6 --process-max=1'
CONFIGS = {
    'defaults': ('collection defaults (zst level 3, process-max = cores)', ''),
    'guides': ("guides' settings (gz level 6, process-max 1)", GUIDES),
}
# Further settings in the full backup comparison (on unless --no-explore), to see where the time goes.
# None of them is a collection default.
NOENC = '--repo1-cipher-type=none'
EXPLORE = {
    'lz4': ('explore: lz4, process-max = cores', '--compress-type=lz4 --compress-level=1'),
    'zst1': ('explore: zst level 1, process-max = cores', '--compress-level=1'),
    'uncompressed': ('explore: no compression, process-max = cores', '--compress-type=none'),
}
# --explore-noenc: without repository encryption. Not the same work as the other rows (its own archive,
# --no-archive-check, the WAL wait done by the script): at 200 MB both rows were ~2 s slower than their
# encrypted twins, inside pgBackRest's copy phase, which is not understood yet. Off by default.
EXPLORE_NOENC = {
    'noenc': ('explore: defaults without repository encryption (WAL wait by the script, see note)', NOENC),
    'lz4_noenc': ('explore: lz4, no repository encryption (WAL wait by the script)',
                  '--compress-type=lz4 --compress-level=1 ' + NOENC),
}
# restore takes no compression options: the backup's own compression is read back.
RESTORE_OPTIONS = {'defaults': '', 'guides': '--process-max=1'}


def prepare(host):
    host.sh('mkdir -p %s && chown postgres:postgres %s && chmod 0750 %s' % (BENCH, BENCH, BENCH))


def fresh_repo(host, name, options=''):
    path = '%s/repo-%s' % (BENCH, name)
    # stanza-create writes both info files; its archive/ is then replaced by the main archive (same
    # database history: system id, version and db-id 1). An unencrypted repository cannot read the
    # main (encrypted) archive: it keeps its own, empty archive/ (see backup_cmd).
    link = '' if NOENC in options else ' && rm -rf {p}/archive && ln -s {a} {p}/archive'
    host.sh(('rm -rf {p} && mkdir -p {p} && pgbackrest --stanza=main --repo1-path={p} --log-level-console=warn '
             '%s stanza-create' % (NOENC if NOENC in options else '') + link).format(p=path, a=MAIN_ARCHIVE),
            user='postgres', what='stanza-create in ' + path)
    return path


def backup_cmd(repo, options, kind='full'):
    command = ('pgbackrest --stanza=main --repo1-path=%s --no-expire-auto --log-level-console=warn %s --type=%s '
               'backup' % (repo, options, kind))
    if NOENC not in options:
        return command
    # Unencrypted repository: pgBackRest cannot check the main archive, so the script does the same wait
    # (until the backup's stop segment is in the main archive) after a backup with --no-archive-check.
    # The extra `info` call (~0.1 s) counts against this configuration.
    return ('%s\nseg=$(pgbackrest --stanza=main --repo1-path=%s %s --output=json info | python3 -c '
            '"import json, sys; print(json.load(sys.stdin)[0][\'backup\'][-1][\'archive\'][\'stop\'])")\n'
            'until ls %s/main/*/"${seg:0:16}"/ 2>/dev/null | grep -q "^$seg-"; do sleep 0.05; done'
            % (command[:-len('backup')] + '--no-archive-check backup', repo, NOENC, MAIN_ARCHIVE))


def wait_archived(host, timeout=600):
    """Until PostgreSQL has no WAL segment left waiting for archive_command."""
    host.sh('for i in $(seq 1 %d); do ls %s/pg_wal/archive_status/ | grep -q "\\.ready$" || exit 0; sleep 0.5; done; '
            'exit 1' % (timeout * 2, PGDATA), what='waiting for WAL archiving')


def repo_size(host, repo):
    return host.du('%s/backup' % repo)


def full_backup(host, runs, explore=False, explore_noenc=False):
    group = Group('full', 'Full backup', 'raw_copy',
                  'Raw copy: `cp -a` of every PGDATA entry except pg_wal (pgBackRest leaves pg_wal out too), '
                  'then `sync`. pgBackRest runs include waiting for the backup\'s WAL to be archived. Rows '
                  'marked explore are not collection defaults: they show what each choice costs.'
                  + (' The unencrypted rows cannot read the main (encrypted) archive, so they run with '
                     '--no-archive-check and the timed script then waits for the same stop segment in the '
                     'main archive: not quite the same work.' if explore_noenc else ''))
    kept = {}

    settings = dict(CONFIGS, **(EXPLORE if explore else {}), **(EXPLORE_NOENC if explore_noenc else {}))

    def pgbackrest_step(name):
        def step(index):
            repo = fresh_repo(host, '%s-%d' % (name, index), settings[name][1])
            seconds, _ = host.timed(backup_cmd(repo, settings[name][1]), user='postgres', what='full backup ' + name)
            size = repo_size(host, repo)
            if name in CONFIGS:
                kept.setdefault(name, []).append(repo)
            else:
                host.sh('rm -rf %s' % repo)
            return {'seconds': seconds, 'size_bytes': size}
        return step

    def copy_step(index):
        target = '%s/copy-%d' % (BENCH, index)
        host.sh('rm -rf %s' % target)
        seconds, _ = host.timed(
            'mkdir -m 0700 {t} && cd {d} && for e in *; do [ "$e" = pg_wal ] || cp -a "$e" {t}/; done && '
            'mkdir -m 0700 {t}/pg_wal && sync'.format(t=target, d=PGDATA), user='postgres', what='raw copy')
        size = host.du(target)
        host.sh('rm -rf %s' % target)
        return {'seconds': seconds, 'size_bytes': size}

    for name in settings:
        group.add(name, settings[name][0])
    group.add('raw_copy', 'cp -a PGDATA (without pg_wal) + sync')
    wait_archived(host)
    interleave(group, runs, [(name, pgbackrest_step(name)) for name in settings] + [('raw_copy', copy_step)])
    # The last repository of each configuration is the base of the incremental and restore runs.
    bases = {}
    for name, repos in kept.items():
        bases[name] = repos[-1]
        for repo in repos[:-1]:
            host.sh('rm -rf %s' % repo)
    return group, bases


def restore(host, runs, bases):
    group = Group('restore', 'Restore of the full backup to a scratch path', 'guides',
                  '`pgbackrest restore --pg1-path=SCRATCH` of each configuration\'s full backup, with the '
                  'same configuration (files only; the server is not started).')
    for name in CONFIGS:
        group.add(name, 'restore, ' + CONFIGS[name][0])
    target = '%s/restore' % BENCH

    def step_for(name):
        def step(index):
            host.sh('rm -rf {t} && mkdir -m 0700 {t}'.format(t=target), user='postgres')
            seconds, _ = host.timed(
                'pgbackrest --stanza=main --repo1-path=%s --pg1-path=%s --log-level-console=warn %s restore'
                % (bases[name], target, RESTORE_OPTIONS[name]), user='postgres', what='restore ' + name)
            return {'seconds': seconds, 'size_bytes': host.du(target)}
        return step

    interleave(group, runs, [(name, step_for(name)) for name in CONFIGS if name in bases],
               between=lambda name: host.sh('rm -rf %s' % target))
    return group


def incremental(host, runs, bases, change):
    """change(): alters ~5% of the data (untimed, once). Each run copies the configuration's base
    repository (its full backup taken before the change) and takes an incremental on top of it."""
    group = Group('incr', 'Incremental backup after changing ~5% of the data', 'guides')
    for name in CONFIGS:
        group.add(name, 'incr, ' + CONFIGS[name][0])
    group.note = change()
    wait_archived(host)

    def step_for(name):
        def step(index):
            repo = '%s/repo-incr-%s' % (BENCH, name)
            host.sh('rm -rf {r} && cp -a {b} {r}'.format(r=repo, b=bases[name]), user='postgres')
            before = repo_size(host, repo)
            seconds, _ = host.timed(backup_cmd(repo, CONFIGS[name][1], 'incr'), user='postgres',
                                    what='incr backup ' + name)
            return {'seconds': seconds, 'size_bytes': repo_size(host, repo) - before}
        return step

    interleave(group, runs, [(name, step_for(name)) for name in CONFIGS if name in bases],
               between=lambda name: host.sh('rm -rf %s/repo-incr-%s' % (BENCH, name)))
    return group


def orchestration(host, runs):
    group = Group('orchestration', 'Orchestration overhead: full backup into the main repository', 'bare',
                  'Both take a full backup of stanza main into the main repository with the collection\'s '
                  'configuration (expire included, retention_full 2).')
    group.add('service', 'systemctl start pgbackrest-main-full.service (pgops-backup, records, ExecCondition)')
    group.add('bare', 'pgbackrest --stanza=main --type=full backup')

    def newest():
        return host.sh("pgbackrest --stanza=main --output=json info | python3 -c 'import json, sys; "
                       "print(json.load(sys.stdin)[0][\"backup\"][-1][\"label\"])'", user='postgres').stdout.strip()

    def service(index):
        before = newest()
        seconds, _ = host.timed('systemctl start pgbackrest-main-full.service', what='full backup service')
        result = host.sh('systemctl show -p Result --value pgbackrest-main-full.service').stdout.strip()
        if result != 'success' or newest() == before:
            raise RuntimeError('pgbackrest-main-full.service: Result=%s, no new backup' % result)
        return {'seconds': seconds}

    def bare(index):
        seconds, _ = host.timed('pgbackrest --stanza=main --log-level-console=warn --type=full backup',
                                user='postgres', what='bare full backup')
        return {'seconds': seconds}

    wait_archived(host)
    interleave(group, runs, [('service', service), ('bare', bare)])
    return group
