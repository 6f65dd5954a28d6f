#!/bin/sh
# Make the repository visible to Ansible as the collection rhizome.pg, the way
# ansible-lint does it: .ansible/collections/ansible_collections/rhizome/pg is a
# relative symbolic link to the repository root (.ansible/ is git-ignored).
# Then: ANSIBLE_COLLECTIONS_PATH=$PWD/.ansible/collections ansible-doc rhizome.pg.cluster_spec
# Idempotent: an existing link to the root is kept, a wrong link is replaced.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd -P)
parent="$root/.ansible/collections/ansible_collections/rhizome"
link="$parent/pg"
mkdir -p "$parent"
if [ -L "$link" ] && [ "$(cd "$link" 2>/dev/null && pwd -P)" = "$root" ]; then
    exit 0
fi
if [ -e "$link" ] && [ ! -L "$link" ]; then
    echo "link-collection.sh: $link exists and is not a symbolic link; remove it and run again" >&2
    exit 1
fi
ln -sfn ../../../.. "$link"
