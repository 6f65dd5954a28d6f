#!/usr/bin/env bash
# Installs the Debian packages that the tests, the demo and the benchmarks need.
# Idempotent: does nothing when every package is already installed.
# Also unpacks Debian 13's etcd 3.5 under /opt/rhizome/etcd-3.5 (install-etcd-3.5.sh)
# and promtool under /opt/rhizome/prometheus (install-promtool.sh).
set -euo pipefail
here=$(dirname "$0")

packages=(
    etcd-server etcd-client          # the store (etcd 3.4, v3 JSON gateway)
    postgresql-15 postgresql-client-15
    pgbackrest                      # WAL archiving and backups (tests/integration/test_backup_*.py)
    python3 python3-venv            # Debian's interpreter: the postgres user can read it
    openssl                         # test certificates for etcd TLS
    haproxy pgbouncer               # the proxy benchmarks' peers (plain, TLS)
    strace valgrind                 # the proxy benchmark's work counts (bench/proxy_work.py)
    iptables                        # partitions inside network namespaces (chaos/network.py)
    make git
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    bash "$here/install-etcd-3.5.sh"
    bash "$here/install-promtool.sh"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; run 'make deps' as root or install them with apt-get" >&2
    exit 1
fi

echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package scripts must not start the distribution's own etcd or PostgreSQL
# services: the tests start their own servers on free loopback ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ "$created_policy" -eq 1 ]; then
    rm -f "$policy"
fi
bash "$here/install-etcd-3.5.sh"
bash "$here/install-promtool.sh"
