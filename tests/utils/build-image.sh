#!/usr/bin/env bash
# Build a systemd test host image (localhost/pgops-host:SUITE) with PostgreSQL installed and running,
# i.e. the kind of host the collection is pointed at. Rebuilt only when this recipe changes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

suite="$1"
image="localhost/pgops-host:$suite"
recipe=$( { cat "$0"; echo "$suite"; } | sha256sum | cut -c1-16)

if [ "$(podman image inspect --format '{{ index .Labels "pgops.recipe" }}' "$image" 2>/dev/null)" = "$recipe" ]; then
  log "image $image is current ($recipe)"
  exit 0
fi

# Mirrors come from this machine's own apt configuration (or the environment), never from the repo.
host_mirror() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -v '^[[:space:]]*#' | grep -oE "https?://[^ ]+/$1/?( |\$)" | awk 'NR==1 {print $1}' || true
}
case "$suite" in
  noble)
    mirror="${PGOPS_UBUNTU_MIRROR:?set PGOPS_UBUNTU_MIRROR to an Ubuntu mirror}"
    security="$mirror"; components="main universe"
    sources="deb $mirror $suite $components
deb $mirror $suite-updates $components
deb $security $suite-security $components"
    # Debian 12 has neither the Ubuntu keyring nor a debootstrap script for noble: the keyring comes from
    # the mirror, checked against pinned fingerprints; Ubuntu's releases share debootstrap's gutsy script.
    bash "$(dirname "$0")/ubuntu-keyring.sh" "$mirror" "$suite" "$PGOPS_CACHE/ubuntu-archive-keyring.gpg"
    keyring=(--keyring="$PGOPS_CACHE/ubuntu-archive-keyring.gpg")
    script=/usr/share/debootstrap/scripts/gutsy ;;
  *)
    mirror="${PGOPS_DEBIAN_MIRROR:-$(host_mirror debian)}"
    security="${PGOPS_DEBIAN_SECURITY_MIRROR:-$(host_mirror debian-security)}"
    security="${security:-$mirror-security}"; components="main"
    sources="deb $mirror $suite $components
deb $mirror $suite-updates $components
deb $security $suite-security $components"
    keyring=(); script="" ;;
esac

rootfs="$PGOPS_CACHE/rootfs-$suite"
rm -rf "$rootfs"; mkdir -p "$rootfs"
trap 'umount "$rootfs/proc" 2>/dev/null || true; rm -rf "$rootfs"' EXIT

log "debootstrap $suite from $mirror"
debootstrap --variant=minbase "${keyring[@]}" \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,iproute2,procps,ca-certificates,gnupg,util-linux \
  "$suite" "$rootfs" "$mirror" ${script:+"$script"} >"$PGOPS_CACHE/debootstrap-$suite.log" 2>&1 \
  || { tail -n 30 "$PGOPS_CACHE/debootstrap-$suite.log"; exit 1; }

printf '%s\n' "$sources" >"$rootfs/etc/apt/sources.list"
# Services must not start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
log "installing PostgreSQL into $suite"
chroot "$rootfs" /bin/sh -ec '
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
  apt-get update -qq
  apt-get -y -qq dist-upgrade
  apt-get -y -qq install --no-install-recommends postgresql postgresql-contrib python3-psycopg2 locales-all
  apt-get clean
  # apt lists stay: a real host has them, and roles install packages without a forced update
' >"$PGOPS_CACHE/chroot-$suite.log" 2>&1 || { tail -n 30 "$PGOPS_CACHE/chroot-$suite.log"; exit 1; }
umount "$rootfs/proc"
rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"
ln -sf /lib/systemd/system/multi-user.target "$rootfs/etc/systemd/system/default.target"

log "importing $image"
tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL pgops.recipe=$recipe" - "$image" >/dev/null
log "built $image ($recipe)"
