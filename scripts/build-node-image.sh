#!/usr/bin/env bash
# Builds the container image the demo and the molecule scenarios boot: a Debian
# bookworm root file system with systemd as PID 1 and Python, made locally with
# debootstrap (no image registry is needed) and imported into podman.
# Does nothing when the image exists; REBUILD=1 forces a new one.
set -euo pipefail

image=${RHIZOME_NODE_IMAGE:-localhost/rhizome-node:bookworm}
if [ "${REBUILD:-0}" != 1 ] && podman image exists "$image"; then
    exit 0
fi

# The Debian mirror this host already uses, so that the image (and apt inside
# the containers) reaches the same place.
sources=/etc/apt/sources.list.d/debian.sources
mirror=$(awk '/^URIs:/ {print $2; exit}' "$sources" 2>/dev/null || true)
if [ -z "$mirror" ]; then
    echo "cannot find this host's Debian mirror in $sources; set it there or in a deb822 sources file" >&2
    exit 1
fi

workdir=$(mktemp -d /var/tmp/rhizome-image.XXXXXX)
trap 'rm -rf "$workdir"' EXIT
rootfs=$workdir/rootfs
echo "building $image from $mirror (about a minute)"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-venv,python3-apt,ca-certificates,iproute2,procps,sudo,less,gnupg \
    bookworm "$rootfs" "$mirror" > "$workdir/debootstrap.log" 2>&1 || {
    tail -n 20 "$workdir/debootstrap.log" >&2
    exit 1
}

# apt inside the container uses the host's sources (bookworm, updates, security).
rm -f "$rootfs/etc/apt/sources.list"
cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
# Units that make no sense in a container.
for unit in systemd-resolved.service getty.target console-getty.service systemd-logind.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
rm -f "$rootfs/etc/machine-id" && touch "$rootfs/etc/machine-id"
tar -C "$rootfs" -c . | podman import --quiet \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" > /dev/null
echo "built $image"
