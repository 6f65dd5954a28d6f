"""LeaseHolder: an etcd lease renewed by its owner, with the time it is safe until.

Safety deadlines (a keeper fencing PostgreSQL, a proxy closing connections, a
sentinel stepping down) count from the moment the last *successful* renewal
was sent: etcd restarted the lease's TTL no earlier than that. A renewal is
bounded by the same deadline (see `renewal_deadline`): a member that does not
answer must not use up the time in which another member could have renewed.
"""

from __future__ import annotations

import logging
import math

from rhizome import clock
from rhizome.etcd import EtcdError, EtcdLeaseExpired
from rhizome.etcd.interface import StoreClient

log = logging.getLogger(__name__)

MINIMUM_BUDGET = 0.5
"""Seconds a renewal gets at least once its caller's deadline is (nearly) gone."""
EXPIRY_MARGIN = 0.5
"""Seconds beyond its TTL after which a lease not renewed is taken for gone."""


def outlived(renewed_at: float, now: float, ttl: float) -> bool:
    """A lease last renewed at `renewed_at` (0: never, e.g. adopted) is past its TTL.

    etcd revokes such a lease, but only when its leader gets to it: after a
    whole-cluster freeze a keepalive waits for that revocation (seconds).
    Taking a new lease at once instead is harmless: the old one, if etcd
    extended it meanwhile (a leader change), only expires later.
    """
    return 0 < renewed_at < now - ttl - EXPIRY_MARGIN


def renewal_deadline(now: float, renewed_at: float | None, within: float, ttl: float) -> float:
    """When a renewal must have answered (rhizome.clock.monotonic() time).

    `within` is the caller's deadline counted from its last successful
    renewal (a keeper's fencing point, a proxy's close deadline), `renewed_at`
    that renewal's time (None before the first, or after the lease expired).
    Once that point is (nearly) gone, the renewal may still save the lease
    until it expires; after that, a new grant gets `within` from now.
    """
    if renewed_at is not None:
        for deadline in (renewed_at + within, renewed_at + ttl):
            if deadline - now >= MINIMUM_BUDGET:
                return deadline
    return now + max(within, MINIMUM_BUDGET)


class LeaseHolder:
    """Grants, renews and revokes one lease; not thread-safe (one owner)."""

    def __init__(self, client: StoreClient, ttl: float) -> None:
        self.client = client
        self.ttl = max(1, math.ceil(ttl))
        self.lease_id: int | None = None
        self.renewed_at = 0.0  # monotonic time the last successful renewal was sent
        self.granted_new = False  # the last renew() had to grant a new lease

    def seconds_since_renewal(self) -> float:
        return clock.monotonic() - self.renewed_at if self.lease_id else math.inf

    def renew(self, within: float | None = None) -> bool:
        """Keep the lease alive (granting a new one if it expired); False on failure.

        With `within` (seconds after the last successful renewal at which the
        caller must act, e.g. fence), the call answers by `renewal_deadline`,
        trying another etcd member in time when one does not answer.
        A new lease means everything published on the old one is gone: the
        caller must publish again (see `granted_new`).
        """
        sent_at = clock.monotonic()
        self.granted_new = False
        if self.lease_id is not None and outlived(self.renewed_at, sent_at, self.ttl):
            log.warning(
                "lease %x outlived its TTL unrenewed: a new one will be granted", self.lease_id
            )
            self.lease_id = None
            return False
        deadline = None
        if within is not None:
            renewed_at = self.renewed_at if self.lease_id is not None else None
            deadline = renewal_deadline(sent_at, renewed_at, within, self.ttl)
        try:
            if self.lease_id is not None:
                self.client.keepalive(self.lease_id, deadline)
            else:
                self.lease_id = self.client.grant_lease(self.ttl, deadline).id
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

    def keep(self, within: float | None = None) -> bool:
        """Keep the lease held now alive; never grants a new one (False: none, or it is gone)."""
        return self.lease_id is not None and self.renew(within)

    def adopt(self, lease_id: int, within: float | None = None) -> bool:
        """Take over `lease_id` (a previous process of ours held it): True when
        etcd's keepalive still succeeds; otherwise no lease is held."""
        self.lease_id = lease_id
        if self.renew(within) and not self.granted_new:
            return True
        self.lease_id = None
        return False

    def revoke(self) -> None:
        """Give the lease up at once (clean shutdown); errors are only logged."""
        if self.lease_id is None:
            return
        try:
            self.client.revoke_lease(self.lease_id)
        except EtcdError as error:
            log.warning("cannot revoke the lease: %s", error)
        self.lease_id = None
