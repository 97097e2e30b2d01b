# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgops.backup contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/utils/ubuntu-keyring.sh trusts a keyring from a mirror only when it holds exactly the pinned
Ubuntu archive keys: a mirror serving any other key is refused (here: a local file:// mirror)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), '..', 'utils', 'ubuntu-keyring.sh')
TOOLS = ('gpg', 'dpkg-deb', 'curl')


@pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS), reason='needs gpg, dpkg-deb and curl')
def test_a_keyring_with_other_keys_is_refused(tmp_path):
    home = tmp_path / 'gnupg'
    home.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(['gpg', '--batch', '--passphrase', '', '--quick-gen-key', 'Impostor <ftpmaster@ubuntu.com>',
                    'ed25519', 'sign', 'never'], env=env, check=True, capture_output=True)
    package = tmp_path / 'pkg'
    (package / 'DEBIAN').mkdir(parents=True)
    (package / 'usr/share/keyrings').mkdir(parents=True)
    (package / 'DEBIAN' / 'control').write_text('Package: ubuntu-keyring\nVersion: 1\nArchitecture: all\n'
                                                'Maintainer: x <x@example.com>\nDescription: x\n')
    with open(str(package / 'usr/share/keyrings/ubuntu-archive-keyring.gpg'), 'wb') as handle:
        handle.write(subprocess.run(['gpg', '--export'], env=env, check=True, capture_output=True).stdout)
    mirror = tmp_path / 'mirror'
    pool = mirror / 'pool/main/u/ubuntu-keyring'
    pool.mkdir(parents=True)
    subprocess.run(['dpkg-deb', '--build', str(package), str(pool / 'ubuntu-keyring_1_all.deb')], check=True,
                   capture_output=True)
    index = mirror / 'dists/noble/main/binary-amd64'
    index.mkdir(parents=True)
    with gzip.open(str(index / 'Packages.gz'), 'wt') as handle:
        handle.write('Package: ubuntu-keyring\nFilename: pool/main/u/ubuntu-keyring/ubuntu-keyring_1_all.deb\n\n')
    out = tmp_path / 'ubuntu.gpg'
    proc = subprocess.run(['bash', SCRIPT, 'file://%s' % mirror, 'noble', str(out)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1
    assert 'refusing the keyring from file://%s' % mirror in proc.stderr
    assert 'F6ECB3762474EDA9D21B7022871920D1991BC93C' in proc.stderr
    assert not out.exists()
