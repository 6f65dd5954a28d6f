#!/usr/bin/env bash
# Unpacks promtool from Debian's prometheus package under /opt/rhizome/prometheus,
# for tests/unit/test_monitoring.py (it checks monitoring/alerts.yml and the agents'
# metrics). Installing the package would also install and start a Prometheus
# server; this takes the .deb with `apt-get download`, from the host's own APT
# sources, and keeps only promtool (and the package's copyright file).
# Idempotent: does nothing when the promtool there already runs.
set -euo pipefail

target=${RHIZOME_PROMETHEUS_DIR:-/opt/rhizome/prometheus}
promtool=$target/usr/bin/promtool

if "$promtool" --version > /dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "promtool is missing from $target; run 'make deps' as root" >&2
    exit 1
fi

staging=
workdir=$(mktemp -d /var/tmp/rhizome-promtool.XXXXXX)
trap 'rm -rf "$workdir" ${staging:+"$staging"}' EXIT
chmod 755 "$workdir"
mkdir -p "$workdir/debs" "$workdir/root"
if id _apt > /dev/null 2>&1; then  # APT downloads as _apt when it can
    chown _apt "$workdir/debs"
fi
echo "unpacking promtool from Debian's prometheus package into $target"
if ! (cd "$workdir/debs" && apt-get download -qq prometheus 2> /dev/null); then
    apt-get update -qq  # package lists missing or stale
    (cd "$workdir/debs" && apt-get download -qq prometheus)
fi
dpkg -x "$workdir"/debs/prometheus_*.deb "$workdir/root"

mkdir -p "$(dirname "$target")"
staging=$(mktemp -d "$(dirname "$target")/.prometheus.XXXXXX")  # moved into place when complete
mkdir -p "$staging/usr/bin" "$staging/usr/share/doc/prometheus"
cp "$workdir/root/usr/bin/promtool" "$staging/usr/bin/promtool"
cp "$workdir/root/usr/share/doc/prometheus/copyright" "$staging/usr/share/doc/prometheus/"
if ! "$staging/usr/bin/promtool" --version > /dev/null; then
    echo "the promtool of Debian's prometheus package does not run here" >&2
    exit 1
fi
chmod 755 "$staging"
rm -rf "$target"
mv "$staging" "$target"
staging=
"$promtool" --version | head -n 1
