#!/usr/bin/env bash
# The Ubuntu archive keyring for debootstrap on Debian 12, which has no ubuntu-keyring package:
# taken from the named Ubuntu mirror and trusted only when its keys are exactly the Ubuntu archive
# signing keys pinned below by fingerprint (the trust anchor lives in this repository, not on the
# mirror; debootstrap then verifies every package against it).
# Usage: ubuntu-keyring.sh MIRROR SUITE OUT   (e.g. ... http://mirror.example/ubuntu noble .cache/ubuntu.gpg)
set -euo pipefail
mirror="${1:?mirror}"; suite="${2:?suite}"; out="${3:?output keyring}"
# Ubuntu Archive Automatic Signing Key (2012) and (2018) <ftpmaster@ubuntu.com>.
pinned="790BC7277767219C42C86F933B4FE6ACC0B21F32 F6ECB3762474EDA9D21B7022871920D1991BC93C"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# The package index is not trusted here: it only says where the keyring package is.
curl -fsSL "$mirror/dists/$suite/main/binary-amd64/Packages.gz" | gzip -dc >"$work/Packages"
deb=$(awk '/^Package: ubuntu-keyring$/ {p=1} p && /^Filename:/ {print $2; exit}' "$work/Packages")
[ -n "$deb" ] || { echo "ubuntu-keyring not found in $mirror $suite" >&2; exit 1; }
curl -fsSL "$mirror/$deb" -o "$work/keyring.deb"
dpkg-deb -x "$work/keyring.deb" "$work/root"
keyring="$work/root/usr/share/keyrings/ubuntu-archive-keyring.gpg"
found=$(gpg --no-default-keyring --show-keys --with-colons "$keyring" 2>/dev/null \
  | awk -F: '$1 == "pub" {getline; if ($1 == "fpr") print $10}' | sort | tr '\n' ' ')
want=$(tr ' ' '\n' <<<"$pinned" | sort | tr '\n' ' ')
if [ "$found" != "$want" ]; then
  echo "refusing the keyring from $mirror: its keys are [$found], expected the pinned [$want]" >&2
  exit 1
fi
install -m 0644 "$keyring" "$out"
echo "$out: Ubuntu archive keys $pinned verified"
