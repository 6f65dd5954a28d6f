"""One keeper name, one instance: the name's key is published by compare-and-swap.

Each keeper's state directory holds an instance id drawn once. The keeper
publishes `keepers/<name>` only over its own last write, over nothing, or
over a document of its own instance (itself before a restart); a document
of another instance means two hosts were given one keeper name, and the
keeper refuses to run (`NameTaken`, naming the holder) instead of
overwriting it — two keepers converging to one assignment could both run
a primary, and the sentinel could take one's "stopped" for the other's.
"""

from __future__ import annotations

import logging
import math
import os
import secrets

from rhizome import clock
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.report import same_report
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import KeeperInfo
from rhizome.store.errors import StoreDocumentError
from rhizome.store.keys import KeyKind
from rhizome.store.view import decode_stored

log = logging.getLogger(__name__)

INSTANCE_FILE = "instance-id"


class NameTaken(RuntimeError):
    """Another keeper instance publishes under this keeper's name."""


def instance_id(keeper: KeeperConfig) -> str:
    """This data directory's instance id, drawn on first use (state_dir/instance-id)."""
    path = keeper.state_dir / INSTANCE_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    drawn = secrets.token_hex(16)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(drawn + "\n")
    return drawn


def holder_problem(name: str, own_instance: str, stored: KeeperInfo) -> str | None:
    """Why `stored` (the document under our name) is not ours to overwrite; None if it is."""
    if stored.instance_id is None or stored.instance_id == own_instance:
        return None
    return (
        f"keeper name {name!r} is already used by another running keeper (instance "
        f"{stored.instance_id}, PostgreSQL at {stored.host}:{stored.port}); every keeper needs "
        f"a name of its own: change 'name' in this keeper's configuration (this one is "
        f"instance {own_instance})"
    )


UNCHANGED_REPUBLISH_INTERVALS = 10
"""An unchanged observation is published again after this many
keeper_publish_interval (a change at once): every put wakes every agent's
watch, and the lease, not the document, tells that the keeper lives."""


class KeeperPublisher:
    """Publishes one keeper's document by compare-and-swap on its key, when it is due."""

    def __init__(self, store: ClusterStore, name: str, own_instance: str) -> None:
        self.store = store
        self.name = name
        self.own_instance = own_instance
        self.revision: int | None = None
        """The key's mod_revision after our last write; None: read it first."""
        self.published: KeeperInfo | None = None
        self.published_at = -math.inf
        self.republish = False
        """Publish at the next chance, changed or not (a new lease)."""

    def publish_if_due(self, info: KeeperInfo, lease: int, stored: bool, interval: float) -> bool:
        """Publish `info` when it changed, is not `stored` in the store, a new lease asks
        for it, or it is UNCHANGED_REPUBLISH_INTERVALS old; True when published now.
        Store errors are raised."""
        due = clock.monotonic() >= self.published_at + interval * UNCHANGED_REPUBLISH_INTERVALS
        if same_report(self.published, info) and stored and not (due or self.republish):
            return False
        self.republish = False
        if not self.publish(info, lease):
            log.warning("the keeper document changed under us twice: publishing again")
            return False
        if not same_report(self.published, info):
            log.debug("published %s", info)
        self.published, self.published_at = info, clock.monotonic()
        return True

    def check_name(self) -> int:
        """The key's mod_revision (0: absent) if we may write it; raises NameTaken."""
        item = self.store.client.get(self.store.keys.member(KeyKind.KEEPER, self.name))
        if item is None:
            return 0
        try:
            stored = decode_stored(item, KeeperInfo).document
        except StoreDocumentError as error:
            log.warning("replacing an unreadable document under our name: %s", error)
            return item.mod_revision
        problem = holder_problem(self.name, self.own_instance, stored)
        if problem is not None:
            raise NameTaken(problem)
        return item.mod_revision

    def publish(self, info: KeeperInfo, lease: int) -> bool:
        """Write `info` on `lease`; False when the key changed twice under us."""
        expected = self.revision if self.revision is not None else self.check_name()
        revision = self.store.publish_keeper_if(info, lease, expected)
        if revision is None:  # expired with an old lease, removed, or written by another
            revision = self.store.publish_keeper_if(info, lease, self.check_name())
        self.revision = revision
        return revision is not None
