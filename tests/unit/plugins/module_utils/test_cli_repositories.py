# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup` with several repositories: the per-repository timers of the pgbackrest role pass
`--repo N`; each repository's job keeps a record of its own and pgBackRest gets `--repo=N`.

Only the process boundary is fake (FakeProcess); cli, the Runner and the records are real.
"""

from __future__ import annotations

import json

from ansible_collections.pgops.backup.plugins.module_utils import cli
from ansible_collections.pgops.backup.tests.unit.fakes import (
    PGBACKREST, FakeProcess, fixture, info_with_backups, pgbackrest_fake)

F1 = '20261121-091140F'
D1 = F1 + '_20261122-013002D'
OK = fixture('info-ok-2.55.1.json')
AFTER_DIFF = info_with_backups('info-chain-2.55.1.json', [F1, D1])


def run(tmp_path, *argv):
    return cli.main(['--quiet', '--json', '--record-dir', str(tmp_path)] + list(argv))


def records(tmp_path):
    return sorted(p.name[:-len('.json')] for p in tmp_path.glob('*.json'))


def record(tmp_path, job):
    return json.loads((tmp_path / ('%s.json' % job)).read_text())


def test_backup_to_a_named_repository_keeps_a_record_of_its_own(use, tmp_path):
    fake = use(pgbackrest_fake(info=[OK, AFTER_DIFF]).on('backup'))
    assert run(tmp_path, 'backup', '--stanza', 'main', '--type', 'diff', '--repo', '2') == 0
    assert records(tmp_path) == ['pgbackrest-backup-main-repo2-diff']
    data = record(tmp_path, 'pgbackrest-backup-main-repo2-diff')
    assert data['status'] == 'ok' and data['repo'] == 2 and data['label'] == D1
    backup = [a for a in fake.argvs if a[-1] == 'backup']
    assert backup == [[PGBACKREST, '--stanza=main', '--log-level-console=info', '--type=diff', '--repo=2', 'backup']]


def test_backup_without_repository_keeps_the_record_name_monitoring_knows(use, tmp_path):
    use(pgbackrest_fake(info=[OK, AFTER_DIFF]).on('backup'))
    assert run(tmp_path, 'backup', '--stanza', 'main', '--type', 'diff') == 0
    assert records(tmp_path) == ['pgbackrest-backup-main-diff']
    assert record(tmp_path, 'pgbackrest-backup-main-diff')['repo'] is None


def test_two_repositories_two_records(use, tmp_path):
    use(pgbackrest_fake(info=[OK, AFTER_DIFF, OK, AFTER_DIFF]).on('backup'))
    assert run(tmp_path, 'backup', '--stanza', 'main', '--type', 'diff', '--repo', '1') == 0
    assert run(tmp_path, 'backup', '--stanza', 'main', '--type', 'diff', '--repo', '2') == 0
    assert records(tmp_path) == ['pgbackrest-backup-main-repo1-diff', 'pgbackrest-backup-main-repo2-diff']


def test_verify_of_one_repository(use, tmp_path):
    fake = use(FakeProcess().on('verify', out='P00   INFO: verify command end: completed successfully\n'))
    assert run(tmp_path, 'verify', '--stanza', 'main', '--repo', '2') == 0
    assert fake.argvs == [[PGBACKREST, '--stanza=main', '--log-level-console=info', '--repo=2', 'verify']]
    data = record(tmp_path, 'pgbackrest-verify-main-repo2')
    assert data['status'] == 'ok' and data['repo'] == 2


def test_failed_check_of_one_repository_is_recorded(use, tmp_path):
    reply = ("P00  ERROR: [049]: unable to get address for 'backup-host': [-2] Name or service not known\n")
    fake = use(FakeProcess().on('check', rc=49, err=reply))
    assert run(tmp_path, 'check', '--stanza', 'db1', '--repo', '1') == 1
    assert fake.argvs == [[PGBACKREST, '--stanza=db1', '--log-level-console=info', '--repo=1', 'check']]
    data = record(tmp_path, 'pgbackrest-check-db1-repo1')
    assert data['status'] == 'failed' and data['error_code'] == 49
    assert 'repository host or object store is reachable' in data['error']
