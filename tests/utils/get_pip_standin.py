"""Stand-in for the get-pip bootstrap script that ansible-test downloads (its host is unreachable).

ansible-test runs this file with a fresh venv's python and pip-style arguments; pip comes from the
venv's own ensurepip and then installs what ansible-test asked for from PyPI.
"""

import subprocess
import sys


def main(args):
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'])
    wanted = [a for a in args if a not in ('--no-setuptools', '--no-wheel')]
    if wanted:
        subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check'] + wanted)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
