# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`pgbackrest info --output=json` parsing on outputs captured from pgBackRest 2.45 and 2.55.1."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.pgops.backup.plugins.module_utils.pgbackrest import parse_info
from ansible_collections.pgops.backup.plugins.module_utils.process import EngineError
from ansible_collections.pgops.backup.tests.unit.fakes import fixture, info_doc, info_lock_held, info_text

F1 = '20261121-091140F'
D1 = F1 + '_20261122-013002D'
I1 = F1 + '_20261122-023002I'
F2 = '20261129-010002F'
I2 = F2 + '_20261129-023002I'


def one(text):
    stanzas = parse_info(text)
    assert len(stanzas) == 1
    return stanzas[0]


@pytest.mark.parametrize('version, pg, system_id, duration, size', [
    ('2.45', '15', 7710549007979250461, 3, 23693678),
    ('2.55.1', '17', 7710549402095226222, 1, 23873949),
])
def test_stanza_with_one_full_backup(version, pg, system_id, duration, size):
    s = one(fixture('info-ok-%s.json' % version))
    assert (s['name'], s['status_code'], s['status_message']) == ('main', 0, 'ok')
    assert s['exists'] is True and s['ok'] is True and s['backup_running'] is False
    assert s['cipher'] == 'aes-256-cbc'
    assert s['repos'] == [{'key': 1, 'cipher': 'aes-256-cbc', 'status_code': 0, 'status_message': 'ok'}]
    assert s['databases'] == [{'id': 1, 'system_id': system_id, 'version': pg, 'repo_key': 1}]
    assert s['backup_count'] == 1
    full = s['last_full']
    assert full['label'] == F1 and full['type'] == 'full'
    assert full['duration_seconds'] == duration and full['size'] == size
    assert s['newest'] == full and s['backups'] == [full]
    assert s['last_diff'] is None and s['last_incr'] is None
    assert s['archive'] == [{'id': '%s-1' % pg, 'min': '000000010000000000000001',
                             'max': '000000010000000000000004', 'repo_key': 1}]
    assert s['archive_min'] == '000000010000000000000001'
    assert s['archive_max'] == '000000010000000000000004'


def test_backup_summary_fields():
    b = one(fixture('info-ok-2.55.1.json'))['backups'][0]
    assert b == {
        'label': F1, 'type': 'full', 'prior': None, 'start': 1795252300, 'stop': 1795252301,
        'duration_seconds': 1, 'size': 23873949, 'delta': 23873949, 'repo_size': 2857904,
        'repo_delta': 2857904, 'repo_key': 1, 'db_id': 1, 'wal_start': '000000010000000000000002',
        'wal_stop': '000000010000000000000003', 'error': False,
        'annotation': {'taken-by': 'pgops.backup.pgbackrest role (initial)'},
        'lsn_start': '0/2000028', 'lsn_stop': '0/3000050',
    }


@pytest.mark.parametrize('version', ['2.45', '2.55.1'])
def test_missing_stanza_path(version):
    s = one(fixture('info-missing-%s.json' % version))
    assert (s['name'], s['status_code'], s['status_message']) == ('nope', 1, 'missing stanza path')
    assert s['exists'] is False and s['ok'] is False
    assert s['backups'] == [] and s['backup_count'] == 0 and s['newest'] is None
    assert s['last_full'] is None and s['last_diff'] is None and s['last_incr'] is None
    assert s['archive'] == [] and s['archive_min'] is None and s['archive_max'] is None
    assert s['databases'] == []
    assert s['repos'][0]['status_code'] == 1


def test_missing_stanza_data_does_not_exist():
    doc = copy.deepcopy(info_doc('info-missing-2.55.1.json'))
    doc[0]['status'].update(code=3, message='missing stanza data')
    s = one(info_text(doc))
    assert (s['status_code'], s['exists'], s['ok']) == (3, False, False)


def test_no_valid_backups_exists_but_not_ok():
    s = one(fixture('info-nobackup-2.55.1.json'))
    assert (s['status_code'], s['status_message']) == (2, 'no valid backups')
    assert s['exists'] is True and s['ok'] is False
    assert s['backup_count'] == 0 and s['last_full'] is None
    assert (s['archive_min'], s['archive_max']) == ('000000010000000000000001',) * 2


def test_mixed_status_across_repos():
    s = one(fixture('info-mixed-2.55.1.json'))
    assert (s['status_code'], s['status_message']) == (4, 'different across repos')
    assert s['exists'] is True and s['ok'] is False
    assert [(r['key'], r['status_code']) for r in s['repos']] == [(1, 0), (2, 1)]


def test_last_backup_of_each_type_in_a_chain():
    s = one(fixture('info-chain-2.55.1.json'))
    assert [b['label'] for b in s['backups']] == [F1, D1, I1, F2, I2]
    assert s['backup_count'] == 5
    assert s['last_full']['label'] == F2
    assert s['last_diff']['label'] == D1
    assert s['last_incr']['label'] == I2
    assert s['newest']['label'] == I2
    assert s['newest']['prior'] == F2
    assert s['archive_max'] == '000000010000000000000015'


def test_backups_are_ordered_by_stop_time_not_by_list_order():
    doc = copy.deepcopy(info_doc('info-chain-2.55.1.json'))
    doc[0]['backup'].reverse()
    s = one(info_text(doc))
    assert [b['label'] for b in s['backups']] == [F1, D1, I1, F2, I2]
    assert s['newest']['label'] == I2 and s['last_full']['label'] == F2


def test_newest_is_by_stop_time_across_repositories():
    # pgBackRest lists the backups of all repositories sorted by label. With a full backup in repo2
    # and a later incremental on the older full in repo1, label order is not time order.
    doc = copy.deepcopy(info_doc('info-chain-2.55.1.json'))
    by_label = dict((b['label'], b) for b in doc[0]['backup'])
    late_incr = copy.deepcopy(by_label[I1])
    late_incr.update(label=F1 + '_20261201-013002I', timestamp={'start': 1796088602, 'stop': 1796088604})
    full_repo2 = copy.deepcopy(by_label[F2])
    full_repo2['database']['repo-key'] = 2
    doc[0]['backup'] = [by_label[F1], late_incr, full_repo2]
    s = one(info_text(doc))
    assert [b['label'] for b in s['backups']] == [F1, F2, F1 + '_20261201-013002I']
    assert s['newest']['label'] == F1 + '_20261201-013002I'
    assert s['last_full']['label'] == F2 and s['last_full']['repo_key'] == 2


def test_archive_range_is_that_of_the_current_database_history():
    doc = copy.deepcopy(info_doc('info-ok-2.55.1.json'))
    doc[0]['db'] = [{'id': 1, 'repo-key': 1, 'system-id': 1, 'version': '15'},
                    {'id': 2, 'repo-key': 1, 'system-id': 2, 'version': '17'}]
    doc[0]['archive'] = [
        {'database': {'id': 1, 'repo-key': 1}, 'id': '15-1',
         'max': '000000010000000000000031', 'min': '00000001000000000000000A'},
        {'database': {'id': 2, 'repo-key': 1}, 'id': '17-2',
         'max': '000000010000000000000005', 'min': '000000010000000000000001'},
    ]
    s = one(info_text(doc))
    # After a major upgrade WAL names restart: the old history's higher names are not "newest".
    assert s['archive_min'] == '000000010000000000000001'
    assert s['archive_max'] == '000000010000000000000005'
    assert [a['id'] for a in s['archive']] == ['15-1', '17-2']


def test_upgrade_changed_reads_every_repository():
    from ansible_collections.pgops.backup.plugins.module_utils.stanza import upgrade_changed
    both_current = ("stanza-upgrade for stanza 'main' on repo1\nstanza 'main' on repo1 is already up to date\n"
                    "stanza-upgrade for stanza 'main' on repo2\nstanza 'main' on repo2 is already up to date\n")
    repo2_upgraded = ("stanza-upgrade for stanza 'main' on repo1\nstanza 'main' on repo1 is already up to date\n"
                      "stanza-upgrade for stanza 'main' on repo2\n")
    assert upgrade_changed(both_current) is False
    assert upgrade_changed(repo2_upgraded) is True


def test_lock_held_means_backup_running():
    s = one(info_lock_held('info-ok-2.45.json'))
    assert s['backup_running'] is True
    assert s['ok'] is True


def test_all_stanzas_are_returned():
    doc = info_doc('info-ok-2.55.1.json') + info_doc('info-missing-2.55.1.json')
    assert [(s['name'], s['exists']) for s in parse_info(json.dumps(doc))] == [('main', True), ('nope', False)]


def test_empty_output_is_no_stanza():
    assert parse_info('') == []
    assert parse_info('[]') == []


@pytest.mark.parametrize('text, words', [
    ('stanza: main\n    status: ok\n', 'did not return JSON'),
    ('{"name": "main"}', 'not a list'),
])
def test_unexpected_output_is_an_engine_error(text, words):
    with pytest.raises(EngineError) as err:
        parse_info(text)
    assert words in err.value.msg
    assert err.value.stdout == text


def test_bundled_backups_without_a_repository_set_size():
    # repo-bundle (with block incremental): pgBackRest reports this backup's delta and block maps, no set size.
    doc = json.loads(fixture('info-ok-2.55.1.json'))
    full = doc[0]['backup'][0]
    full['info']['repository'] = {'delta': 2857904, 'delta-map': 120, 'size-map': 120}
    incr = copy.deepcopy(full)
    incr.update(label=I1, type='incr', prior=F1)
    incr['info']['repository'] = {'delta': 40960, 'delta-map': 12, 'size-map': 130}
    incr['timestamp'] = {'start': 1795252400, 'stop': 1795252401}
    doc[0]['backup'].append(incr)
    backups = dict((b['label'], b) for b in one(json.dumps(doc))['backups'])
    assert (backups[F1]['repo_size'], backups[F1]['repo_delta']) == (2857904, 2857904)  # a full is its own set
    assert (backups[I1]['repo_size'], backups[I1]['repo_delta']) == (None, 40960)
