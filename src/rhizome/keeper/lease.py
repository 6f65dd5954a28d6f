"""The keeper's lease: renewed by one thread, watched by another that fences.

The renewer keeps the lease alive every `keeper_publish_interval`. The
watchdog checks how long ago the last *successful* renewal was sent (etcd
restarted the TTL no earlier than that, see `rhizome.lease`). Once that
reaches the fencing point, a PostgreSQL that may accept writes is stopped: a
fast shutdown first, SIGKILL of every process shortly before
`fence_deadline`, so the fence holds before the lease can expire (DESIGN
§3.2). The watchdog never waits on etcd, so a frozen store cannot delay it.
It does not poll: it sleeps until the fencing point of the last renewal (at
most `heartbeat_interval`), and the renewer wakes it after every attempt, so a
lost lease fences at once and a renewal re-arms the guard at once. That
longest sleep is a little more than a renewal interval, so in steady state the
watchdog runs once per renewal, right after it, and its own timer only fires
when a renewal is late.

On every tick the watchdog also calls `heartbeat(deadline)` with the fence
deadline of the last renewal: the keeper passes it to its fencing guard, a
separate process that kills PostgreSQL at that deadline if this thread (or
the whole keeper) stops (guard.py). A failsafe round that every member
confirmed counts as a renewal sent when the round started (rhizome.failsafe).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

from rhizome import clock
from rhizome.lease import LeaseHolder

log = logging.getLogger(__name__)

WATCHDOG_INTERVAL = 0.02
"""Seconds between the watchdog's ticks while the fencing point has passed."""
BEAT_SLACK = 0.25
"""Seconds the watchdog's longest sleep exceeds the renewal interval (`heartbeat_interval`):
enough for a renewal's round trip, so the renewer's wake comes first."""
SYSTEMD_PING_SHARE = 0.625
"""The longest sleep is at most this share of systemd's WatchdogSec: a stall of the rest
(0.75 s of 2 s) is still tolerated while a renewal is late, 1 s while renewals arrive
every second."""
STOP_BUDGET = 1.0
"""Seconds before fence_deadline at which the fast shutdown starts."""
KILL_MARGIN = 0.2
"""Seconds before fence_deadline at which whatever still runs is SIGKILLed."""
RETRY_INTERVAL = 0.25
"""Seconds between renewal attempts after one failed (e.g. while etcd elects a new
leader): several tries fit before the fencing point instead of one."""


def fencing_point(fence_deadline: float) -> float:
    """Seconds after the last renewal at which fencing starts."""
    return max(fence_deadline - STOP_BUDGET, fence_deadline * 0.6)


def own_key_vanished(lease_before: int | None, lease_now: int | None, lease_id: int | None) -> bool:
    """Our document, stored on our current lease (`lease_before`), is gone (`lease_now` None).

    Either etcd revoked or expired the lease, or someone deleted the key: a
    renewal tells which.
    """
    return lease_id is not None and lease_before == lease_id and lease_now is None


class LeaseGuard:
    """Renews the keeper's lease and fences PostgreSQL when it cannot."""

    def __init__(
        self,
        holder: LeaseHolder,
        renew_interval: float,
        fence_deadline: float,
        fence: Callable[[float, float], None],
        on_new_lease: Callable[[], None],
        heartbeat: Callable[[float | None], None] = lambda deadline: None,
        extension: Callable[[], float] = lambda: -math.inf,
        heartbeat_interval: float | None = None,
        on_renewal: Callable[[], None] = lambda: None,
    ) -> None:
        """`fence(seconds_since_renewal, kill_at)` must stop a writable PostgreSQL by kill_at.

        `extension()`: the monotonic time of a failsafe round that counts as a
        renewal sent then (rhizome.failsafe; -inf: none). `heartbeat_interval`: the
        watchdog's longest sleep (None: `heartbeat_interval_of(renew_interval, None)`).
        `on_renewal()` is called after every successful renewal, once the watchdog is woken.
        """
        self.holder = holder
        self.renew_interval = renew_interval
        self.fence_deadline = fence_deadline
        self._fence = fence
        self._on_new_lease = on_new_lease
        self._heartbeat = heartbeat
        self._on_renewal = on_renewal
        self._extension = extension
        self.heartbeat_interval = (
            heartbeat_interval_of(renew_interval, None)
            if heartbeat_interval is None else heartbeat_interval
        )  # fmt: skip
        self._stopped = threading.Event()
        self._check_requested = threading.Event()
        self._renewal_attempted = threading.Event()
        """Set by the renewer after every attempt: the watchdog looks again at once."""
        self._document_lease: int | None = None
        """The lease our document was stored on at the last store change seen."""
        self._first_renewal = threading.Event()
        self.lost_at: float | None = None
        """When a lease expired under us (monotonic); the cluster may have moved on."""
        self._threads = [
            threading.Thread(target=self._renew_forever, name="lease-renewer", daemon=True),
            threading.Thread(target=self._watch_forever, name="fence-watchdog", daemon=True),
        ]

    @property
    def lease_id(self) -> int | None:
        return self.holder.lease_id

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def wait_for_lease(self, timeout: float) -> bool:
        return self._first_renewal.wait(timeout)

    def renewed_at(self) -> float:
        """When the last successful renewal was sent, or the last complete failsafe round
        started: the fence deadline counts from there (always a finite time)."""
        return max(self.holder.renewed_at, self._extension())

    def seconds_since_renewal(self) -> float:
        """Since `renewed_at`; infinite once the lease is lost, unless a failsafe round
        completed since (a lost lease fences at once, however recent its last renewal)."""
        if self.holder.lease_id is None:
            return clock.monotonic() - self._extension()
        return clock.monotonic() - self.renewed_at()

    def fresh(self) -> bool:
        """The lease was renewed recently enough to run or become a primary."""
        return self.seconds_since_renewal() < fencing_point(self.fence_deadline)

    def check_now(self) -> None:
        """Renew at once instead of at the next interval.

        For when the keeper sees a sign that its lease is gone (its document
        vanished, a write on the lease was refused): a stalled etcd leader can
        revoke a lease that was renewed all along (docs/protocol.md, Known
        limits), and the sentinel may fail over as soon as the key vanishes.
        The renewal finds out, and a lost lease fences at the next watchdog tick.
        """
        self._check_requested.set()

    def note_own_document(self, lease_now: int | None) -> None:
        """From the store watch: the lease our document is stored on now (None: gone)."""
        if own_key_vanished(self._document_lease, lease_now, self.lease_id):
            log.warning("our keeper document vanished: checking the lease at once")
            self.check_now()
        self._document_lease = lease_now

    def stop(self, revoke: bool) -> None:
        self._stopped.set()
        self._check_requested.set()
        self._renewal_attempted.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if revoke:
            self.holder.revoke()

    def _renew_forever(self) -> None:
        while not self._stopped.is_set():
            started = clock.monotonic()
            had_lease = self.holder.lease_id is not None
            renewed = self.holder.renew(fencing_point(self.fence_deadline))
            if not renewed and had_lease and self.holder.lease_id is None:
                self.lost_at = clock.monotonic()
            if self.holder.lease_id is not None:
                self._first_renewal.set()
            self._renewal_attempted.set()
            if renewed:
                self._on_renewal()
            if self.holder.granted_new:
                self._on_new_lease()
            elapsed = clock.monotonic() - started
            interval = self.renew_interval if renewed else min(self.renew_interval, RETRY_INTERVAL)
            self._check_requested.wait(max(interval - elapsed, 0.05))
            self._check_requested.clear()

    def _watch_forever(self) -> None:
        threshold = fencing_point(self.fence_deadline)
        while not self._stopped.is_set():
            renewed_at = self.renewed_at()
            self._heartbeat(fence_deadline_of(renewed_at, self.fence_deadline))
            since = self.seconds_since_renewal()
            if since >= threshold and self._first_renewal.is_set():
                kill_at = renewed_at + self.fence_deadline - KILL_MARGIN
                self._fence(since, kill_at)
            self._renewal_attempted.wait(watchdog_sleep(since, threshold, self.heartbeat_interval))
            self._renewal_attempted.clear()  # what it announced is read at the top, after this


def fence_deadline_of(renewed_at: float, fence_deadline: float) -> float | None:
    """The deadline the guard holds PostgreSQL to; None while the lease was never renewed
    (renewed_at 0): one counted from 0 lies in the past, and a guard holding a paused
    master would fire at it as soon as it left `hold`."""
    return renewed_at + fence_deadline if renewed_at > 0 else None


def watchdog_sleep(since: float, threshold: float, heartbeat_interval: float) -> float:
    """Seconds the watchdog may sleep, `since` seconds after the last renewal: until the
    fencing point, at most `heartbeat_interval`, and WATCHDOG_INTERVAL once it passed."""
    if since >= threshold:
        return WATCHDOG_INTERVAL
    return min(heartbeat_interval, max(threshold - since, WATCHDOG_INTERVAL / 2))


def heartbeat_interval_of(renew_interval: float, systemd_watchdog_seconds: float | None) -> float:
    """The watchdog's longest sleep: a renewal interval and BEAT_SLACK, or
    SYSTEMD_PING_SHARE of systemd's WatchdogSec when that is shorter (each tick pings it)."""
    longest = renew_interval + BEAT_SLACK
    if systemd_watchdog_seconds is None:
        return longest
    return min(longest, systemd_watchdog_seconds * SYSTEMD_PING_SHARE)
