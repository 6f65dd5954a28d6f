#!/usr/bin/env bash
# `make demo` / `make demo-down`: three podman containers (systemd as PID 1)
# deployed with playbooks/site.yml and inventories/demo. Debian 12 (bookworm,
# PostgreSQL 15) by default; RHIZOME_NODE_SUITE=trixie makes Debian 13 nodes
# (PostgreSQL 17).
set -euo pipefail
cd "$(dirname "$0")/.."

export RHIZOME_NODE_SUITE=${RHIZOME_NODE_SUITE:-bookworm}
image=${RHIZOME_NODE_IMAGE:-localhost/rhizome-node:$RHIZOME_NODE_SUITE}
network=rhizome-demo
# trixie's systemd starts the rhizome units (User= with PrivateDevices= and
# ProtectKernelTunables=) only with CAP_SYS_ADMIN (molecule/trixie/molecule.yml).
capabilities=()
if [ "$RHIZOME_NODE_SUITE" = trixie ]; then
    capabilities=(--cap-add SYS_ADMIN)
fi
nodes=(rhizome-demo-1 rhizome-demo-2 rhizome-demo-3)
secrets=${RHIZOME_DEMO_SECRETS:-$HOME/.cache/rhizome/demo}

up() {
    bash scripts/podman-setup.sh
    bash scripts/build-node-image.sh
    sh scripts/link-collection.sh
    podman network exists "$network" || podman network create "$network" > /dev/null
    for node in "${nodes[@]}"; do
        if ! podman container exists "$node"; then
            podman run -d --name "$node" --hostname "$node" --network "$network" \
                "${capabilities[@]}" --systemd=always "$image" /sbin/init > /dev/null
        fi
        podman start "$node" > /dev/null
    done
    mkdir -p "$secrets" && chmod 700 "$secrets"
    RHIZOME_DEMO_SECRETS=$secrets ansible-playbook -i inventories/demo playbooks/site.yml
    show
}

show() {
    local node address addresses=()
    : > "$secrets/pgpass"
    chmod 600 "$secrets/pgpass"
    for node in "${nodes[@]}"; do
        address=$(podman inspect -f "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}" "$node")
        addresses+=("$address")
        printf '%s:*:*:%s:%s\n' "$address" postgres "$(cat "$secrets/superuser.pass")" >> "$secrets/pgpass"
    done
    echo
    podman exec "${nodes[0]}" rhizomectl status
    echo
    echo "Connect through the proxies (read-write port 6432, read-only 6433; libpq tries them in turn):"
    echo "  PGPASSFILE=$secrets/pgpass psql \"host=$(IFS=,; echo "${addresses[*]}") port=6432 user=postgres dbname=postgres connect_timeout=2\""
    echo "Inside a node:  podman exec -it ${nodes[0]} rhizomectl status"
    echo "Remove it all:  make demo-down"
}

down() {
    for node in "${nodes[@]}"; do
        podman rm -f --time 5 "$node" > /dev/null 2>&1 || true
    done
    podman network rm "$network" > /dev/null 2>&1 || true
    rm -f "$secrets/superuser.pass" "$secrets/replication.pass" "$secrets/pgpass"
    rmdir "$secrets" 2> /dev/null || true
    echo "demo removed (the image $image stays; podman rmi it to free the space)"
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
