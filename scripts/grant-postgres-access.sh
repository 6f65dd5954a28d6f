#!/usr/bin/env bash
# The integration tests run agents as the unprivileged `postgres` user from
# this checkout's .venv, so that user must be able to reach the checkout.
# When a parent directory blocks it (e.g. a clone under /root, mode 0700),
# add the traverse permission only (o+x: no listing) and say so.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/.." && pwd)
probe="$checkout/src/rhizome/__init__.py"

if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -r "$probe"; then
    exit 0
fi

directory=$checkout
while [ "$directory" != "/" ]; do
    if ! runuser -u postgres -- test -x "$directory"; then
        echo "granting traverse permission (chmod o+x) on $directory so that the postgres user can run the agents"
        chmod o+x "$directory"
    fi
    directory=$(dirname "$directory")
done

if ! runuser -u postgres -- test -r "$probe"; then
    echo "the postgres user still cannot read $probe; make the checkout world-readable (chmod -R o+rX)" >&2
    exit 1
fi
