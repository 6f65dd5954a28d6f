#!/usr/bin/env bash
# Unpacks Debian 13 (trixie)'s etcd 3.5 (etcd-server, etcd-client) under
# /opt/rhizome/etcd-3.5, next to bookworm's etcd 3.4 in /usr/bin, for the tests
# and benchmarks that run against both (tests/harness/etcd.py, ETCD_RELEASES).
# The host's APT sources stay untouched: trixie's package lists go to a temporary
# directory, from the mirror the host already uses for bookworm, and APT checks
# them against debian-archive-keyring (bookworm's carries the trixie keys).
# Idempotent: does nothing when the etcd there already reports 3.5.
set -euo pipefail

target=${RHIZOME_ETCD35_DIR:-/opt/rhizome/etcd-3.5}
suite=trixie
packages=(etcd-server etcd-client)

if "$target/usr/bin/etcd" --version 2>/dev/null | grep -q '^etcd Version: 3\.5\.'; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "etcd 3.5 is missing from $target; run 'make deps' as root" >&2
    exit 1
fi

# shellcheck source=scripts/debian-mirror.sh
. "$(dirname "$0")/debian-mirror.sh"
mirror=${RHIZOME_DEBIAN_MIRROR:-$(host_mirror bookworm | head -n 1 || true)}
if [ -z "$mirror" ]; then
    echo "cannot find this host's Debian bookworm mirror in /etc/apt/sources.list(.d);" \
        "set RHIZOME_DEBIAN_MIRROR=URL" >&2
    exit 1
fi

staging=
workdir=$(mktemp -d /var/tmp/rhizome-etcd35.XXXXXX)
trap 'rm -rf "$workdir" ${staging:+"$staging"}' EXIT
chmod 755 "$workdir"
mkdir -p "$workdir/lists/partial" "$workdir/cache/archives/partial" "$workdir/debs"
if id _apt > /dev/null 2>&1; then  # APT downloads as _apt when it can
    chown _apt "$workdir/lists/partial" "$workdir/debs"
fi
printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "$mirror" "$suite" /usr/share/keyrings/debian-archive-keyring.gpg > "$workdir/$suite.sources"
apt_options=(
    -o "Dir::Etc::SourceList=$workdir/$suite.sources" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$workdir/lists" -o "Dir::Cache=$workdir/cache"
)
echo "unpacking etcd 3.5 from Debian $suite ($mirror) into $target"
apt-get "${apt_options[@]}" update -qq
(cd "$workdir/debs" && apt-get "${apt_options[@]}" download -qq "${packages[@]}")

mkdir -p "$(dirname "$target")"
staging=$(mktemp -d "$(dirname "$target")/.etcd-3.5.XXXXXX")  # moved into place when complete
for deb in "$workdir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$staging"
done
if ! "$staging/usr/bin/etcd" --version | grep -q '^etcd Version: 3\.5\.'; then
    rm -rf "$staging"
    echo "the $suite package did not give an etcd 3.5" >&2
    exit 1
fi
chmod 755 "$staging"
rm -rf "$target"
mv "$staging" "$target"
"$target/usr/bin/etcd" --version | head -n 1
