#!/usr/bin/env bash
# Builds the container image the demo and the molecule scenarios boot: a Debian
# root file system with systemd as PID 1 and Python, made locally with
# debootstrap (no image registry is needed) and imported into podman.
#
# RHIZOME_NODE_SUITE picks the release: bookworm (Debian 12, the default) or
# trixie (Debian 13); the image is localhost/rhizome-node:<suite> unless
# RHIZOME_NODE_IMAGE names another. Apt inside the image reads that suite, its
# -updates and (when this host has a security mirror) its -security suite,
# from the mirrors this host uses for bookworm.
# Does nothing when the image exists; REBUILD=1 forces a new one.
set -euo pipefail

suite=${RHIZOME_NODE_SUITE:-bookworm}
case "$suite" in
    bookworm | trixie) ;;
    *)
        echo "RHIZOME_NODE_SUITE must be bookworm or trixie (got '$suite')" >&2
        exit 2
        ;;
esac
image=${RHIZOME_NODE_IMAGE:-localhost/rhizome-node:$suite}
if [ "${REBUILD:-0}" != 1 ] && podman image exists "$image"; then
    exit 0
fi

# shellcheck source=scripts/debian-mirror.sh
. "$(dirname "$0")/debian-mirror.sh"
# The suite's own entry when the host has one, else the host's bookworm entry:
# a Debian mirror serves every release under the same URI.
suite_mirror() {  # $1: the suffix, "" or -security
    { host_mirror "$suite$1"; host_mirror "bookworm$1"; } | head -n 1 || true
}
mirror=${RHIZOME_DEBIAN_MIRROR:-$(suite_mirror "")}
security_mirror=${RHIZOME_DEBIAN_SECURITY_MIRROR:-$(suite_mirror -security)}
if [ -z "$mirror" ]; then
    echo "cannot find this host's Debian mirror in /etc/apt/sources.list(.d);" \
        "set RHIZOME_DEBIAN_MIRROR=URL" >&2
    exit 1
fi

workdir=$(mktemp -d /var/tmp/rhizome-image.XXXXXX)
trap 'rm -rf "$workdir"' EXIT
rootfs=$workdir/rootfs
echo "building $image from $mirror (about a minute)"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-venv,python3-apt,ca-certificates,iproute2,procps,sudo,less,gnupg \
    "$suite" "$rootfs" "$mirror" > "$workdir/debootstrap.log" 2>&1 || {
    tail -n 20 "$workdir/debootstrap.log" >&2
    exit 1
}

# apt inside the container: the suite, its updates and (when the host has it) security.
rm -f "$rootfs/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$suite" "$suite"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$security_mirror" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security_mirror" "$suite"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
} > "$rootfs/etc/apt/sources.list.d/debian.sources"
# No package lists in the image: those debootstrap left know the suite only, and
# their fresh time stamps would keep apt (cache_valid_time) from reading the above.
# The lists directory is dated 1970 so that Ansible's apt (which goes by its
# time stamp) reads the lists anew on first use.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/lib/apt/periodic/update-success-stamp
touch -d @0 "$rootfs/var/lib/apt/lists"
# Units that make no sense in a container.
for unit in systemd-resolved.service getty.target console-getty.service systemd-logind.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
rm -f "$rootfs/etc/machine-id" && touch "$rootfs/etc/machine-id"
tar -C "$rootfs" -c . | podman import --quiet \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" > /dev/null
echo "built $image"
