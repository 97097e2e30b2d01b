#!/usr/bin/env bash
# The AWX/AAP execution environment: `ansible-builder create` writes the build context of
# execution-environment.yml into .cache/ee, then this checks that the context holds the collection
# (the tarball of the current galaxy.yml version, installable by the context's requirements.yml) and
# the collection's Python requirements, with the ansible-core that the tests use. Building the image
# itself needs the base image's registry and package mirrors, out of reach here (docs/awx.md).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGOPS_ROOT"
context="$PGOPS_CACHE/ee"
artifacts="$PGOPS_CACHE/artifact"
version=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' galaxy.yml)
tarball="$artifacts/pgops-backup-$version.tar.gz"

log "building the collection artifact for the execution environment ($tarball)"
mkdir -p "$artifacts"
find "$artifacts" -maxdepth 1 -name 'pgops-backup-*.tar.gz' ! -name "${tarball##*/}" -delete
ansible-galaxy collection build --force --output-path "$artifacts" >/dev/null

log "ansible-builder create -> $context"
rm -rf "$context"
ansible-builder create -f execution-environment.yml -c "$context" --output-filename Containerfile >/dev/null

python - "$context" "$tarball" "$version" <<'PY'
import filecmp, json, os, re, sys, tarfile
import yaml

context, tarball, version = sys.argv[1:]
build = os.path.join(context, '_build')
errors = []

def need(ok, msg):
    if not ok:
        errors.append(msg)

containerfile = open(os.path.join(context, 'Containerfile')).read()
# The collection: the current tarball, named by the context's galaxy requirements.
shipped = sorted(os.listdir(os.path.join(build, 'collections'))) if os.path.isdir(os.path.join(build, 'collections')) else []
need(shipped == [os.path.basename(tarball)], 'context collections/ holds %r, expected only %s' % (shipped, os.path.basename(tarball)))
if shipped == [os.path.basename(tarball)]:
    need(filecmp.cmp(os.path.join(build, 'collections', shipped[0]), tarball, shallow=False),
         'the tarball in the context differs from %s' % tarball)
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile('MANIFEST.json'))['collection_info']
        names = tar.getnames()
    need((manifest['namespace'], manifest['name'], manifest['version']) == ('pgops', 'backup', version),
         'the tarball is %(namespace)s.%(name)s %(version)s, expected pgops.backup ' % manifest + version)
    need('requirements.txt' in names, 'the tarball lacks requirements.txt (read by ansible-builder introspection)')
galaxy = yaml.safe_load(open(os.path.join(build, 'requirements.yml')))
wanted = [{'name': 'collections/pgops-backup-%s.tar.gz' % version, 'type': 'file'}]
need(galaxy.get('collections') == wanted,
     'ee/requirements.yml installs %r, expected %r (version of galaxy.yml)' % (galaxy.get('collections'), wanted))
need('COPY _build /build' in containerfile and 'ansible-galaxy collection install' in containerfile,
     'the Containerfile does not install the galaxy requirements from the context')
# The collection's Python requirements, as the repository has them, and no test-only packages.
need(filecmp.cmp(os.path.join(build, 'requirements.txt'), 'requirements.txt', shallow=False),
     'context requirements.txt differs from the collection requirements.txt')
need('COPY _build/requirements.txt' in containerfile, 'the Containerfile does not use the Python requirements')
pins = dict(re.findall(r'^(ansible-core)==(\S+)', open('requirements-dev.txt').read(), re.M))
need('ansible-core==%s' % pins.get('ansible-core') in containerfile,
     'the Containerfile does not install ansible-core==%s (requirements-dev.txt)' % pins.get('ansible-core'))
need('ansible-runner==' in containerfile, 'the Containerfile does not install a pinned ansible-runner')
for test_only in ('psycopg', 'molecule', 'pytest', 'ansible-lint'):
    for name in ('requirements.txt', 'Containerfile'):
        text = open(os.path.join(build if name == 'requirements.txt' else context, name)).read()
        body = '\n'.join(line for line in text.splitlines() if not line.lstrip().startswith('#'))
        need(test_only not in body, '%s of the execution environment names the test-only %s' % (name, test_only))
if errors:
    sys.exit('execution environment context %s:\n  ' % context + '\n  '.join(errors))
PY

# The galaxy stage's install, run here from the context: the requirements resolve to the collection.
probe="$context/.probe"
( cd "$context/_build" && ANSIBLE_COLLECTIONS_PATH="$probe" ansible-galaxy collection install --offline -r requirements.yml -p "$probe" >/dev/null )
[ -f "$probe/ansible_collections/pgops/backup/MANIFEST.json" ] || { log "the context's requirements.yml did not install pgops.backup"; exit 1; }
rm -rf "$probe"
log "execution environment context ok: $context (pgops.backup $version, Python requirements, ansible-core pinned)"
