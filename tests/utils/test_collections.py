"""Extract the collections the tests need from the PyPI `ansible` package (Galaxy is unreachable).

Only containers.podman (molecule's podman driver) and ansible.posix are taken: about 2 MB of the
54 MB wheel. The collection under test needs nothing beyond ansible-core at run time.
"""

import glob
import os
import subprocess
import sys
import zipfile

ANSIBLE_PACKAGE = 'ansible==12.3.0'
WANTED = ('containers/podman/', 'ansible/posix/')


def main(cache):
    target = os.path.join(cache, 'collections')
    if all(os.path.exists(os.path.join(target, 'ansible_collections', w, 'MANIFEST.json')) for w in WANTED):
        return 0
    wheels = os.path.join(cache, 'wheels')
    if not glob.glob(os.path.join(wheels, 'ansible-*.whl')):
        subprocess.check_call([sys.executable, '-m', 'pip', 'download', '-q', '--disable-pip-version-check',
                               '--no-deps', ANSIBLE_PACKAGE, '-d', wheels])
    wheel = sorted(glob.glob(os.path.join(wheels, 'ansible-*.whl')))[-1]
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if any(name.startswith('ansible_collections/' + w) for w in WANTED):
                archive.extract(name, target)
    print('==> test collections extracted from %s' % os.path.basename(wheel), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
