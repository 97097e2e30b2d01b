"""Calendar retention on real backups (issue 17), after the PITR drills (test_pitr_drill.py).

The pgbackrest role is run again with a calendar policy: pgBackRest's own count retention is raised
(repo1-retention-full high, so that its automatic expire never removes a set) and the backup services
run the policy after each backup (checked at the end with a scheduled incr). Four full backups are
taken a few seconds apart with a marker row before each, then a diff and an incr on the newest; the
second full is marked to keep. A policy keeping only the backups of the last few seconds (`within`,
computed from the backups' own times) must expire exactly every other set - including all the older
backups of the drills - and leave the marked one; then the oldest kept backup (the marked one) is
restored into a scratch instance by a restore drill, which must see exactly the rows committed
before it (its WAL survived the expiry).
"""

import json
import math
import os
import subprocess
import time

from testhosts import molecule_hosts, psql

testinfra_hosts = molecule_hosts()
CONF = '/etc/pgbackrest/pgbackrest.conf'
POLICY_FILE = '/etc/pgops-backup/retention-policy.json'
# The role's policy keeps everything of the last day: its run after a scheduled backup must expire nothing here.
ROLE_POLICY = {'within': '1d', 'monthly': 12}
STATE = {}


def sh(host, command, *args):
    result = host.run(command, *args)
    assert result.rc == 0, '%s: %s %s' % (command, result.stdout, result.stderr)
    return result.stdout.strip()


def info(host):
    out = sh(host, 'runuser -u postgres -- pgbackrest --stanza=main --output=json info')
    return json.loads(out)[0]


def labels(host):
    return set(b['label'] for b in info(host)['backup'])


def backup(host, kind):
    out = sh(host, 'pgops-backup --quiet --json backup --stanza main --type %s' % kind)
    return json.loads(out)['label']


def test_00_the_role_with_a_policy_raises_the_count_and_runs_it_after_backups(host):
    assert 'repo1-retention-full=2' in host.file(CONF).content_string
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
    argv = ['ansible-playbook', '-i', os.environ['MOLECULE_INVENTORY_FILE'],
            os.path.join(root, 'molecule', 'pitr', 'converge.yml'), '-e', json.dumps({'pgbackrest_retention_policy': ROLE_POLICY})]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    with open(os.path.join(os.environ.get('PGOPS_LOG_DIR', '/tmp'), 'pitr-verify-retention-role.out'), 'w') as out:
        out.write(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-4000:]
    sh(host, "systemctl stop 'pgbackrest-*.timer'")  # the role started them again: no backup of their own here
    assert 'repo1-retention-full=9999999' in host.file(CONF).content_string
    assert json.loads(host.file(POLICY_FILE).content_string) == ROLE_POLICY
    unit = host.file('/etc/systemd/system/pgbackrest-main-incr.service').content_string
    assert ('ExecStartPost=/usr/local/bin/pgops-backup --quiet retention --stanza main --policy-file %s' % POLICY_FILE) in unit
    assert 'ExecStartPost' not in host.file('/etc/systemd/system/pgbackrest-main-verify.service').content_string


def test_10_backups_a_little_apart_and_a_keep_mark(host):
    STATE['before'] = labels(host)
    assert STATE['before'], 'the drills left no backups'
    psql(host, 'CREATE TABLE IF NOT EXISTS rt_marks(tag text PRIMARY KEY)')
    fulls = []
    for n in range(1, 5):
        psql(host, "INSERT INTO rt_marks VALUES ('rt-%d')" % n)
        fulls.append(backup(host, 'full'))
        time.sleep(25 if n == 2 else 2)  # the policy's cut falls in the long pause after the second full
    psql(host, "INSERT INTO rt_marks VALUES ('rt-5')")
    diff = backup(host, 'diff')
    incr = backup(host, 'incr')
    STATE.update(fulls=fulls, diff=diff, incr=incr)
    out = sh(host, "pgops-backup --json keep --stanza main --set %s --reason 'molecule: issue 17' --user molecule"
             % fulls[1])
    assert json.loads(out)['changed'] is True
    annotation = [b for b in info(host)['backup'] if b['label'] == fulls[1]][0].get('annotation') or {}
    assert annotation.get('pgops-keep', '').startswith('molecule at ')
    assert annotation['pgops-keep'].endswith(': molecule: issue 17')


def policy_keeping_from(host, label):
    """A `within` rule that reaches back 10 s before the end of backup `label` (its own stop time)."""
    stop = [b for b in info(host)['backup'] if b['label'] == label][0]['timestamp']['stop']
    now = float(sh(host, 'date +%s.%N'))
    return json.dumps([{'within': '%ds' % (math.ceil(now - stop) + 10)}])


def test_20_dry_run_shows_the_decisions_and_changes_nothing(host):
    fulls = STATE['fulls']
    STATE['policy'] = policy_keeping_from(host, fulls[2])
    before = labels(host)
    out = sh(host, "pgops-backup --quiet --json retention --stanza main --policy '%s' --dry-run" % STATE['policy'])
    plan = json.loads(out)['plans'][0]
    decisions = dict((d['label'], d) for d in plan['backups'])
    assert labels(host) == before
    assert decisions[fulls[1]]['kept_by'] == ['keep mark'], decisions[fulls[1]]
    assert decisions[fulls[0]]['action'] == 'expire' and 'older than' in decisions[fulls[0]]['reason']
    assert 'newest good full' in decisions[fulls[3]]['kept_by']
    assert decisions[STATE['incr']]['kept_by'] == ['newest good incr']
    STATE['expected'] = set(fulls[1:]) | {STATE['diff'], STATE['incr']}
    assert set(plan['kept']) == STATE['expected']


def test_30_the_policy_expires_exactly_the_expected_sets_and_the_marked_one_survives(host):
    wal_needed = [b for b in info(host)['backup'] if b['label'] == STATE['fulls'][1]][0]['archive']['start']
    out = sh(host, "pgops-backup --quiet --json retention --stanza main --policy '%s'" % STATE['policy'])
    record = json.loads(out)
    assert record['status'] == 'ok' and record['expired'], record
    assert all(cmd.endswith(' expire') and '--set=' in cmd for cmd in record['commands'] if 'expire' in cmd)
    assert labels(host) == STATE['expected']
    assert STATE['fulls'][0] not in labels(host) and not (STATE['before'] & labels(host))
    archive = info(host)['archive']
    assert min(a['min'] for a in archive if a['min']) <= wal_needed  # the WAL of the oldest kept backup is there
    # Run again: nothing more to expire.
    again = json.loads(sh(host, "pgops-backup --quiet --json retention --stanza main --policy '%s'" % STATE['policy']))
    assert again['expired'] == [] and labels(host) == STATE['expected']


def test_40_the_oldest_kept_backup_restores_with_exactly_its_rows(host):
    oldest = STATE['fulls'][1]
    result = host.run("pgops-backup --json restore-test --source pgbackrest --stanza main --set %s "
                      "--sql-check marks \"SELECT string_agg(tag, ',' ORDER BY tag) FROM rt_marks\" rt-1,rt-2"
                      % oldest)
    assert result.rc == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert 'marks' in json.dumps(report), report


def test_50_release_the_mark_and_the_policy_may_expire_it(host):
    out = sh(host, 'pgops-backup --json keep --stanza main --set %s --release' % STATE['fulls'][1])
    assert json.loads(out)['changed'] is True
    annotation = [b for b in info(host)['backup'] if b['label'] == STATE['fulls'][1]][0].get('annotation') or {}
    assert 'pgops-keep' not in annotation
    out = sh(host, "pgops-backup --quiet --json retention --stanza main --policy '%s' --dry-run" % STATE['policy'])
    decisions = dict((d['label'], d) for d in json.loads(out)['plans'][0]['backups'])
    assert decisions[STATE['fulls'][1]]['action'] == 'expire'


def test_60_a_scheduled_backup_runs_the_role_policy_after_it(host):
    before = labels(host)
    sh(host, 'systemctl start pgbackrest-main-incr.service')
    record = json.loads(host.file('/var/lib/pgops-backup/records/pgbackrest-retention-main.json').content_string)
    assert record['status'] == 'ok' and record['policy'] == ROLE_POLICY and record['expired'] == [], record
    after = labels(host)
    assert before < after and len(after - before) == 1  # the new incr, nothing expired
