# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fakes for the unit tests: the process boundary only.

FakeProcess stands in for the programs the engine runs. It answers with canned (rc, stdout, stderr)
chosen by the words of argv and records every call, so tests can assert what ran. Everything
between the public engine/module API and this boundary is the real code.
"""

from __future__ import annotations

import copy
import json
import os

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
VERSIONS = ('2.45', '2.55.1')
PGBACKREST = '/usr/bin/pgbackrest'


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def info_doc(name):
    return json.loads(fixture(name))


def info_text(doc):
    """JSON as `pgbackrest info --output=json` prints it: compact, keys sorted."""
    return json.dumps(doc, separators=(',', ':'), sort_keys=True)


def info_with_backups(name, labels):
    """The info fixture `name` keeping only the backups whose label is in `labels`."""
    doc = copy.deepcopy(info_doc(name))
    doc[0]['backup'] = [b for b in doc[0]['backup'] if b['label'] in labels]
    return info_text(doc)


def info_lock_held(name):
    doc = copy.deepcopy(info_doc(name))
    doc[0]['status']['lock']['backup']['held'] = True
    return info_text(doc)


def _strip_runuser(argv):
    if argv and os.path.basename(argv[0]) == 'runuser' and '--' in argv:
        return argv[argv.index('--') + 1:]
    return argv


class FakeProcess(object):
    """Callable with the signature of process.subprocess_run; also provides `which`.

    on(*words, rc, out, err) registers a reply for every argv that contains all `words` as
    elements; the most specific registration wins. Several replies for the same words are
    returned in order, the last one repeating. An argv with no reply fails the test.
    """

    def __init__(self, missing=()):
        self.calls = []
        self.missing = set(missing)
        self._replies = {}

    def on(self, *words, **reply):
        self._replies.setdefault(tuple(words), []).append(
            (reply.get('rc', 0), reply.get('out', ''), reply.get('err', '')))
        return self

    def which(self, name):
        return None if name in self.missing else '/usr/bin/%s' % name

    def __call__(self, argv, env=None, data=None, stream=None):
        argv = [str(a) for a in argv]
        self.calls.append({'argv': argv, 'env': env, 'data': data, 'stream': stream is not None})
        words = _strip_runuser(argv)
        keys = [k for k in self._replies if all(w in words for w in k)]
        if not keys:
            raise AssertionError('FakeProcess: no reply for %r' % (argv,))
        replies = self._replies[max(keys, key=len)]
        rc, out, err = replies.pop(0) if len(replies) > 1 else replies[0]
        if stream is not None:
            for line in out.splitlines():
                stream(line)
        return rc, out, err

    @property
    def argvs(self):
        return [c['argv'] for c in self.calls]

    def pgbackrest_commands(self):
        """pgBackRest commands in the order they ran: the last argv element, or `help <command>`."""
        out = []
        for argv in self.argvs:
            argv = _strip_runuser(argv)
            if os.path.basename(argv[0]) == 'pgbackrest':
                rest = [a for a in argv[1:] if not a.startswith('--config')]
                out.append(argv[-1] if rest[:1] != ['help'] else ' '.join(rest))
        return out


def pgbackrest_fake(version='2.55.1', info=None, missing=()):
    """A FakeProcess answering `pgbackrest version` and, when given, `pgbackrest info`."""
    fake = FakeProcess(missing=missing)
    fake.on('version', out='pgBackRest %s\n' % version)
    for text in ([info] if isinstance(info, str) else info or []):
        fake.on('info', out=text)
    return fake


def add_help(fake, version):
    """`pgbackrest help` and `help <command>` as captured; commands other than backup answer with
    the header of their help page only (their options are not under test)."""
    general = fixture('help-%s.out' % version)
    fake.on('help', out=general)
    started = False
    for line in general.splitlines():
        if line == 'Commands:':
            started = True
        elif started and line.startswith('    '):
            command = line.split()[0]
            if command not in ('backup', 'help'):
                fake.on('help', command, out="pgBackRest %s - '%s' command help\n" % (version, command))
        elif started and line:
            break
    fake.on('help', 'backup', out=fixture('help-backup-%s.out' % version))
    return fake


# --- Ansible modules -------------------------------------------------------------------------

class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def run_module(monkeypatch, module, args, fake, check_mode=False, diff=False):
    """Run module.main() with `args`; AnsibleModule.run_command/get_bin_path go to `fake`.

    Returns (failed, result).
    """
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    def run_command(self, args, **kwargs):
        return fake(args, env=kwargs.get('environ_update'), data=kwargs.get('data'))

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        return fake.which(arg)

    def exit_json(self, **kwargs):
        raise AnsibleExitJson(kwargs)

    def fail_json(self, **kwargs):
        raise AnsibleFailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    full_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(full_args):
        try:
            module.main()
        except AnsibleExitJson as exc:
            return False, exc.args[0]
        except AnsibleFailJson as exc:
            return True, exc.args[0]
    raise AssertionError('module returned without exit_json or fail_json')
