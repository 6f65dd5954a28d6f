#!/usr/bin/env bash
# Installs podman and makes rootful containers with systemd as PID 1 work on
# this kind of host (cgroup v1 hybrid, a hard open-files limit of 20000), as
# ../shared/TESTING.md describes. Idempotent; leaves an operator's own
# containers.conf alone when it already has these settings.
set -euo pipefail

if ! command -v podman > /dev/null || ! command -v runc > /dev/null || ! command -v debootstrap > /dev/null \
    || [ ! -x /usr/lib/cni/dnsname ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "podman, runc and debootstrap are missing; run this as root" >&2
        exit 1
    fi
    echo "installing podman, runc and debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman runc debootstrap uidmap slirp4netns \
        golang-github-containernetworking-plugin-dnsname \
        fuse-overlayfs catatonit > /dev/null
fi

conf=/etc/containers/containers.conf
if [ ! -e "$conf" ]; then
    mkdir -p /etc/containers
    cat > "$conf" <<'CONF'
# Written by rhizome's scripts/podman-setup.sh for containers with systemd.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
elif ! grep -q 'cgroup_manager *= *"cgroupfs"' "$conf" || ! grep -q 'runtime *= *"runc"' "$conf"; then
    echo "$conf exists without runtime = \"runc\" and cgroup_manager = \"cgroupfs\";" \
        "add them (see ../shared/TESTING.md) and run again" >&2
    exit 1
fi
