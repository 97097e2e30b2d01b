# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgops-backup retention` / `keep` / `dump-retention` / `dump-keep`: what runs, what is refused."""

from __future__ import annotations

import functools
import json
import os

import pytest

from ansible_collections.pgops.backup.plugins.module_utils import cli, cli_retention, dump_retention, process
from ansible_collections.pgops.backup.plugins.module_utils.process import Runner
from ansible_collections.pgops.backup.tests.unit.fakes import pgbackrest_fake
from ansible_collections.pgops.backup.tests.unit.plugins.module_utils.retention_fakes import (
    DAY, history, info_text)

NOW = 1795255200


@pytest.fixture
def use(monkeypatch):
    monkeypatch.setattr(process.os, 'geteuid', lambda: 1000)

    def _use(fake):
        monkeypatch.setattr(cli_retention, 'Runner', functools.partial(Runner, run=fake, which=fake.which))
        return fake
    return _use


def run(tmp_path, *argv):
    return cli.main(['--json', '--record-dir', str(tmp_path / 'records')] + list(argv))


def expires(fake):
    return [[a for a in argv if a.startswith(('--set=', '--repo='))] for argv in fake.argvs if argv[-1] == 'expire']


def fulls(doc, repo=1):
    return sorted(b['label'] for b in doc[0]['backup'] if b['type'] == 'full' and b['database']['repo-key'] == repo)


def test_expires_by_set_exactly_what_the_policy_drops_in_each_repository(use, tmp_path, capsys):
    doc = history(NOW, days=10, repos=(1, 2), with_diff_incr=False)
    fake = use(pgbackrest_fake(info=info_text(doc)).on('expire', out=''))
    assert run(tmp_path, 'retention', '--stanza', 'main', '--policy', '{"daily": 3}') == 0
    labels = fulls(doc)
    want = [['--set=%s' % label, '--repo=%d' % repo] for repo in (1, 2) for label in labels[:7]]
    assert expires(fake) == want  # oldest first, each named with its repository; never a bare expire
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record['status'] == 'ok' and [p['kept'] for p in record['plans']] == [labels[:6:-1]] * 2
    assert 'keep    daily, newest good full' in err and 'expire  daily: day ' in err


def test_dry_run_expires_nothing_and_says_what_would_go(use, tmp_path, capsys):
    doc = history(NOW, days=5, with_diff_incr=False)
    fake = use(pgbackrest_fake(info=info_text(doc)))
    assert run(tmp_path, 'retention', '--stanza', 'main', '--policy', '[{"every": "1d", "keep": 2}]',
               '--dry-run') == 0
    assert expires(fake) == []
    out, err = capsys.readouterr()
    assert json.loads(out)['changed'] is True and '3 would expire' in err


def test_only_the_named_repository(use, tmp_path, capsys):
    doc = history(NOW, days=4, repos=(1, 2), with_diff_incr=False)
    fake = use(pgbackrest_fake(info=info_text(doc)).on('expire', out=''))
    assert run(tmp_path, 'retention', '--stanza', 'main', '--repo', '2', '--policy', '{"daily": 3}') == 0
    assert expires(fake) == [['--set=%s' % fulls(doc, 2)[0], '--repo=2']]


def test_a_running_backup_skips_the_run(use, tmp_path, capsys):
    doc = history(NOW, days=5, with_diff_incr=False)
    use(pgbackrest_fake(info=info_text(doc)).on('expire', rc=50, err='ERROR: [050]: unable to acquire lock'))
    assert run(tmp_path, 'retention', '--stanza', 'main', '--policy', '{"daily": 1}') == 0
    assert json.loads(capsys.readouterr()[0])['status'] == 'skipped'


@pytest.mark.parametrize('argv, words', [
    ([], 'exactly one of --policy JSON or --policy-file'),
    (['--policy', '{"daily": 1}', '--policy-file', '/x'], 'exactly one of'),
    (['--policy', '{daily'], 'cannot read the retention policy'),
    (['--policy', '{}'], 'the retention policy is empty'),
    (['--policy', '{"daily": 0, "weekly": 0}'], 'the retention policy is empty'),
    (['--policy', '{"daily": -2}'], 'keep must be a whole number'),
])
def test_bad_policies_are_refused_before_pgbackrest_runs(use, tmp_path, capsys, argv, words):
    fake = use(pgbackrest_fake())
    assert run(tmp_path, 'retention', '--stanza', 'main', *argv) == 1
    assert words in json.loads(capsys.readouterr()[0])['error']
    assert fake.pgbackrest_commands() == []


def test_policy_file(use, tmp_path, capsys):
    doc = history(NOW, days=2, with_diff_incr=False)
    use(pgbackrest_fake(info=info_text(doc)).on('expire', out=''))
    path = tmp_path / 'policy.json'
    path.write_text('{"daily": 14, "weekly": 8, "monthly": 12}')
    assert run(tmp_path, 'retention', '--stanza', 'main', '--policy-file', str(path)) == 0
    assert json.loads(capsys.readouterr()[0])['expired'] == []


def test_keep_marks_with_who_when_why_in_every_repository(use, tmp_path, capsys):
    doc = history(NOW, days=3, repos=(1, 2), with_diff_incr=False)
    label = fulls(doc)[0]
    fake = use(pgbackrest_fake(info=info_text(doc)).on('annotate', out=''))
    assert run(tmp_path, 'keep', '--stanza', 'main', '--set', label, '--reason', 'audit 2026', '--user', 'alice') == 0
    annotates = [a for a in fake.argvs if a[-1] == 'annotate']
    assert [[x for x in a if x.startswith(('--set', '--repo'))] for a in annotates] == [
        ['--set=%s' % label, '--repo=1'], ['--set=%s' % label, '--repo=2']]
    assert '--annotation=pgops-keep=alice at 2026-11-21T10:00:' in annotates[0][-2]
    assert annotates[0][-2].endswith(': audit 2026')
    assert json.loads(capsys.readouterr()[0])['changed'] is True


def test_release_removes_the_key_and_an_unmarked_set_is_no_change(use, tmp_path, capsys):
    doc = history(NOW, days=3, with_diff_incr=False)
    marked, plain = fulls(doc)[0], fulls(doc)[1]
    doc = history(NOW, days=3, with_diff_incr=False, marks={marked: 'bob at t: hold'})
    fake = use(pgbackrest_fake(info=info_text(doc)).on('annotate', out=''))
    assert run(tmp_path, 'keep', '--stanza', 'main', '--set', marked, '--release') == 0
    assert [a[-2] for a in fake.argvs if a[-1] == 'annotate'] == ['--annotation=pgops-keep=']
    capsys.readouterr()
    assert run(tmp_path, 'keep', '--stanza', 'main', '--set', plain, '--release') == 0
    assert json.loads(capsys.readouterr()[0])['changed'] is False
    assert len([a for a in fake.argvs if a[-1] == 'annotate']) == 1


@pytest.mark.parametrize('argv, words', [
    (['--set', 'LABEL'], 'a keep mark needs a reason'),
    (['--set', 'LABEL', '--reason', '  '], 'a keep mark needs a reason'),
    (['--set', 'LABEL', '--reason', 'x' * 201], 'one line of at most 200 characters'),
    (['--set', '20200101-000000F', '--reason', 'r'], "backup set '20200101-000000F' is not in any repository"),
    (['--set', 'LABEL', '--repo', '2', '--reason', 'r'], 'is not in repository 2'),
])
def test_keep_refusals(use, tmp_path, capsys, argv, words):
    doc = history(NOW, days=2, with_diff_incr=False)
    argv = [a.replace('LABEL', fulls(doc)[0]) for a in argv]
    fake = use(pgbackrest_fake(info=info_text(doc)))
    assert run(tmp_path, 'keep', '--stanza', 'main', '--user', 'alice', *argv) == 1
    assert words in capsys.readouterr()[1]
    assert 'annotate' not in fake.pgbackrest_commands()


def test_keep_needs_annotate(use, tmp_path, capsys):
    doc = history(NOW, days=2, with_diff_incr=False)
    use(pgbackrest_fake(version='2.40', info=info_text(doc)))
    assert run(tmp_path, 'keep', '--stanza', 'main', '--set', fulls(doc)[0], '--reason', 'r', '--user', 'a') == 1
    assert 'pgBackRest 2.40.0 cannot annotate backups (2.41 or later' in capsys.readouterr()[1]


# --- dumps ------------------------------------------------------------------------------------

def make_dumps(root, database, epochs, partial=()):
    paths = []
    for n, epoch in enumerate(epochs):
        stamp = __import__('datetime').datetime.utcfromtimestamp(epoch).strftime('%Y%m%dT%H%M%SZ')
        path = root / database / stamp
        path.mkdir(parents=True)
        manifest = {'status': 'ok', 'database': database, 'finished_epoch': epoch, 'format': 'custom',
                    'schema_only': n in partial}
        (path / 'manifest.json').write_text(json.dumps(manifest))
        paths.append(str(path))
    return paths


@pytest.fixture
def dumps(tmp_path, monkeypatch):
    from ansible_collections.pgops.backup.plugins.module_utils import dump_manifest
    monkeypatch.setattr(dump_manifest, 'read_manifest', lambda path: json.load(open(os.path.join(path, 'manifest.json'))))
    monkeypatch.setattr(dump_manifest, 'is_partial', lambda manifest: bool(manifest.get('schema_only')))
    return tmp_path / 'dumps'


def test_dump_policy_prunes_exactly_and_a_marked_set_survives(dumps, tmp_path, capsys):
    paths = make_dumps(dumps, 'app', [NOW - d * DAY for d in range(10, 0, -1)])
    assert cli.main(['--record-dir', str(tmp_path / 'records'), 'dump-keep', '--set', paths[0],
                     '--reason', 'ticket 42', '--user', 'carol']) == 0
    mark = json.loads(open(paths[0] + '.pgops-keep.json').read())
    assert mark['user'] == 'carol' and mark['reason'] == 'ticket 42' and mark['at'].startswith('2026-11-21T10:00')
    assert cli.main(['--json', '--record-dir', str(tmp_path / 'records'), 'dump-retention', '--destination',
                     str(dumps), '--policy', '{"daily": 3}']) == 0
    record = json.loads(capsys.readouterr()[0])
    assert sorted(record['pruned']) == sorted(paths[1:7])
    assert sorted(os.listdir(str(dumps / 'app'))) == sorted(
        [os.path.basename(p) for p in [paths[0]] + paths[7:]] + [os.path.basename(paths[0]) + '.pgops-keep.json'])
    assert 'keep mark' in [d for d in record['decisions']['app'] if d['path'] == paths[0]][0]['kept_by']


def test_dump_policy_dry_run_and_the_newest_complete_dump(dumps, tmp_path, capsys):
    # the newest dump is partial: it stays (newest good), and so does the newest complete one
    paths = make_dumps(dumps, 'app', [NOW - 30 * DAY, NOW - 20 * DAY, NOW - 10 * DAY], partial=(2,))
    assert cli.main(['--json', '--record-dir', str(tmp_path / 'records'), 'dump-retention', '--destination',
                     str(dumps), '--policy', '{"within": "1d"}', '--dry-run']) == 0
    record = json.loads(capsys.readouterr()[0])
    assert record['would_prune'] == [paths[0]] and record['pruned'] == []
    assert all(os.path.isdir(p) for p in paths)


def test_dump_keep_release_and_refusals(dumps, tmp_path, capsys):
    path = make_dumps(dumps, 'app', [NOW - DAY])[0]
    base = ['--record-dir', str(tmp_path / 'records'), 'dump-keep']
    assert cli.main(base + ['--set', path, '--user', 'a']) == 1
    assert 'a keep mark needs a reason' in capsys.readouterr()[1]
    assert cli.main(base + ['--set', str(dumps / 'app'), '--reason', 'r']) == 1
    assert 'is not a dump set (DATABASE/STAMP directory)' in capsys.readouterr()[1]
    assert cli.main(base + ['--set', path + 'X', '--reason', 'r']) == 1
    assert cli.main(base + ['--set', path, '--reason', 'r', '--user', 'a']) == 0
    assert cli.main(base + ['--set', path, '--release']) == 0
    assert not os.path.exists(path + '.pgops-keep.json')
    capsys.readouterr()
    assert cli.main(['--json'] + base + ['--set', path, '--release']) == 0
    assert json.loads(capsys.readouterr()[0])['changed'] is False


def test_dump_retention_refuses_a_missing_destination(tmp_path, capsys):
    assert cli.main(['--record-dir', str(tmp_path / 'records'), 'dump-retention', '--destination',
                     str(tmp_path / 'nowhere'), '--policy', '{"daily": 1}']) == 1
    assert 'dump destination %s does not exist' % (tmp_path / 'nowhere') in capsys.readouterr()[1]


def test_count_retention_of_the_dump_job_honours_keep_marks(tmp_path):
    path = tmp_path / 'app' / '20261101T000000Z'
    path.mkdir(parents=True)
    dump_retention.set_keep_mark(str(path), 'dave', 'legal hold')
    units = [{'name': 'a', 'finished_epoch': NOW}, {'name': 'b', 'finished_epoch': NOW - DAY, 'path': str(path)},
             {'name': 'c', 'finished_epoch': NOW - 2 * DAY}]
    keep, prune = dump_retention.select(units, NOW, retention_count=1)
    assert [u['name'] for u in keep] == ['a', 'b'] and [u['name'] for u in prune] == ['c']
