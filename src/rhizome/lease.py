"""LeaseHolder: an etcd lease renewed by its owner, with the time it is safe until.

Safety deadlines (a keeper fencing PostgreSQL, a proxy closing connections, a
sentinel stepping down) count from the moment the last *successful* renewal
was sent: etcd restarted the lease's TTL no earlier than that.
"""

from __future__ import annotations

import logging
import math

from rhizome import clock
from rhizome.etcd import EtcdClient, EtcdError, EtcdLeaseExpired

log = logging.getLogger(__name__)


class LeaseHolder:
    """Grants, renews and revokes one lease; not thread-safe (one owner)."""

    def __init__(self, client: EtcdClient, ttl: float) -> None:
        self.client = client
        self.ttl = max(1, math.ceil(ttl))
        self.lease_id: int | None = None
        self.renewed_at = 0.0  # monotonic time the last successful renewal was sent
        self.granted_new = False  # the last renew() had to grant a new lease

    def seconds_since_renewal(self) -> float:
        return clock.monotonic() - self.renewed_at if self.lease_id else math.inf

    def renew(self) -> bool:
        """Keep the lease alive (granting a new one if it expired); False on failure.

        A new lease means everything published on the old one is gone: the
        caller must publish again (see `granted_new`).
        """
        sent_at = clock.monotonic()
        self.granted_new = False
        try:
            if self.lease_id is not None:
                self.client.keepalive(self.lease_id)
            else:
                self.lease_id = self.client.grant_lease(self.ttl).id
                self.granted_new = True
        except EtcdLeaseExpired:
            log.warning("lease %x expired; a new one will be granted", self.lease_id or 0)
            self.lease_id = None
            return False
        except EtcdError as error:
            log.warning("cannot renew the lease: %s", error)
            return False
        self.renewed_at = sent_at
        return True

    def revoke(self) -> None:
        """Give the lease up at once (clean shutdown); errors are only logged."""
        if self.lease_id is None:
            return
        try:
            self.client.revoke_lease(self.lease_id)
        except EtcdError as error:
            log.warning("cannot revoke the lease: %s", error)
        self.lease_id = None
