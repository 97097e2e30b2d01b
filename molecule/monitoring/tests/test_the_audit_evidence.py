"""The audit evidence bundle (issue 17), after test_monitoring.py (pytest runs the files in name order):
by then the host has several backups in an encrypted repository, a pg_dump job record, a restore
drill record and a PITR (elsewhere) audit record. playbooks/evidence.yml fetches one bundle, whose
manifest verifies, whose summary lists them, and which holds no secret."""

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile

import yaml
from testhosts import molecule_hosts, run_playbook

testinfra_hosts = molecule_hosts()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
DEST = os.path.join(os.environ['PGOPS_LOG_DIR'], 'monitoring-evidence')
RECORDS = '/var/lib/pgops-backup/records'
STATE = {}


def cipher_pass():
    with open(os.path.join(ROOT, 'molecule', 'base.yml')) as handle:
        return yaml.safe_load(handle)['provisioner']['inventory']['group_vars']['all']['pgbackrest_cipher_pass']


def bundle(host):
    if 'files' not in STATE:
        shutil.rmtree(DEST, ignore_errors=True)
        # JSON: a reason with a space is one value (key=value pairs would cut it at the space).
        rc, output = run_playbook('evidence.yml', '-e', json.dumps({'evidence_since': '1d', 'evidence_reason': 'molecule audit',
                                                                    'evidence_dest': DEST}))
        output = re.sub(r'\x1b\[[0-9;]*m', '', output)
        with open(os.path.join(os.environ['PGOPS_LOG_DIR'], 'monitoring-evidence.txt'), 'w') as handle:
            handle.write(output)
        assert rc == 0, output
        name = host.backend.hostname
        directory = os.path.join(DEST, name)
        bundles = [f for f in os.listdir(directory) if f.endswith('.tar.gz')]
        assert len(bundles) == 1, os.listdir(directory)
        path = os.path.join(directory, bundles[0])
        with tarfile.open(path, 'r:gz') as tar:
            files = {m.name.split('/', 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        with open(path, 'rb') as handle:
            raw = handle.read()
        STATE.update(output=output, directory=directory, path=path, files=files, raw=raw,
                     evidence=json.loads(files['evidence.json']), summary=files['summary.md'].decode())
    return STATE


def test_playbook_fetches_a_private_bundle_and_says_so_in_one_line(host):
    got = bundle(host)
    assert stat.S_IMODE(os.stat(got['path']).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(got['directory']).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(DEST).st_mode) == 0o700
    assert re.search(r'%s: \S+ \.\. \S+: \d+ backup\(s\), 1 drill\(s\), \d+ PITR record\(s\).*manifest verified'
                     % re.escape(host.backend.hostname), re.sub(r'\s+', ' ', got['output'])), got['output']
    on_host = host.file('/var/lib/pgops-backup/evidence')
    assert on_host.is_directory and on_host.mode == 0o700
    with open(got['path'], 'rb') as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    record = json.loads(host.file('%s/evidence.json' % RECORDS).content_string)
    assert record['status'] == 'ok' and record['sha256'] == digest and record['reason'] == 'molecule audit'


def test_manifest_lists_every_file_and_verifies(host):
    files = bundle(host)['files']
    manifest = {}
    for line in files['MANIFEST.sha256'].decode().splitlines():
        digest, name = line.split('  ', 1)
        manifest[name] = digest
    assert sorted(manifest) == sorted(set(files) - {'MANIFEST.sha256'})
    for name, digest in manifest.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name


def test_summary_lists_the_backups_drill_and_pitr_of_the_period(host):
    got = bundle(host)
    ev, text = got['evidence'], got['summary']
    info = json.loads(host.check_output('runuser -u postgres -- pgbackrest --stanza=main --output=json info'))
    labels = [b['label'] for b in info[0]['backup']]
    assert len(labels) >= 3 and [b['label'] for b in ev['backups']] == labels
    for label in labels:
        assert '| %s |' % label in text
    assert '## Backups of the period (%d)' % len(labels) in text
    # Encrypted repository: the cipher and a fingerprint of the key, never the key.
    repo = ev['stanzas'][0]['repositories'][0]
    assert repo['cipher'] == 'aes-256-cbc' and re.match(r'^pbkdf2-sha256:600000:[0-9a-f]{32}$', repo['fingerprint'])
    assert all(b['key_fingerprint'] == repo['fingerprint'] and b['cipher'] == 'aes-256-cbc' for b in ev['backups'])
    assert [d['record'] for d in ev['drills']] == ['restore_test-main'] and '## Restore drills (1)' in text
    assert ev['pitr'] and any(p['destination'] == 'elsewhere' and p['reason'] == 'molecule monitoring scenario'
                              and p['requested_by'] for p in ev['pitr'])
    assert 'molecule monitoring scenario' in text and '## Point-in-time recoveries (audit records)' in text
    assert any(j['record'] == 'pg-dump-nightly' for j in ev['jobs'])
    # WAL status and the gap the window tests left (reported, no longer blocking).
    window = ev['recovery_window']['windows'][0]
    assert window['gaps'] and 'WAL gap(s)' in text
    assert any(c['cluster'].endswith('/main') for c in ev['archiving']), ev['archiving']
    assert 'records/pgbackrest-info.json' not in got['files'] and 'pgbackrest-info.json' in got['files']


def test_no_secret_in_any_file_of_the_bundle(host):
    got = bundle(host)
    secret = cipher_pass().encode()
    assert secret not in got['raw']
    for name, data in got['files'].items():
        assert secret not in data, name
    # The host's own secret files were read to look for them: no record carried the passphrase.
    redactions = got['evidence']['redactions']
    assert not any('cipher-pass' in what for r in redactions for what in r['what']), redactions
    assert secret not in got['output'].encode()
