"""The store follower: a watch thread and a lease thread, reporting to the loop.

One follower follows one cluster's keys and names that cluster in every
report; after a major-upgrade cutover the proxy starts a follower of the
successor and stops this one (succession.py).

The watch thread keeps the cluster's keys up to date from a `PrefixWatcher`
and sends the routes they imply to the event loop as soon as anything that
matters changed. The lease thread renews the proxy's lease every
`renew_interval`, publishes its `ProxyInfo` (with the proxy generation the
loop has applied) on a new lease, whenever that generation changes and when
the watch shows the key gone (not on every renewal: every put wakes every
agent's watch), and tells the loop when each successful renewal was *sent*:
the loop's close deadline counts from there. After any failure, and after any
gap between renewals as long as the close deadline (a freeze, a stall), it
reads the whole store again before reporting a renewal, so a fenced proxy
resumes with a fresh view.

Store errors are retried. Any other error in either thread, or in what they
post to the loop, ends the proxy through `SafetyFailure` (failure.py): a
watch that no longer follows the store, or a lease thread that is gone, must
not leave a proxy forwarding by stale routes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from rhizome import clock
from rhizome.config import StoreConfig
from rhizome.etcd import EtcdError, EtcdLeaseExpired, EventKind, KeyValue, Lease, WatchUpdate
from rhizome.etcd.stats import RequestStats
from rhizome.lease import outlived, renewal_deadline
from rhizome.proxy.config import ProxyConfig
from rhizome.proxy.failure import SafetyFailure
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.metrics import StoreCounters
from rhizome.proxy.routing import Routes, RoutingSettings, compute_routes
from rhizome.store.documents import ProxyInfo
from rhizome.store.keys import KeyKind
from rhizome.store.view import build_view

log = logging.getLogger(__name__)

WATCH_IDLE_TIMEOUT = 3.0
"""Seconds of watch silence after which etcd is checked (a frozen member)."""
RETRY_DELAY = 0.5
ROUTING_KINDS = {KeyKind.SPEC, KeyKind.STATE, KeyKind.KEEPER}
"""Keys whose changes can change the routes (proxies' and sentinels' cannot)."""


class StoreFollower:
    """Runs the watch and lease threads of one proxy."""

    def __init__(
        self,
        store_config: StoreConfig,
        config: ProxyConfig,
        fence: StoreFence,
        loop: asyncio.AbstractEventLoop,
        failure: SafetyFailure,
        counters: StoreCounters | None = None,
    ) -> None:
        self.config = config
        self.cluster = store_config.cluster
        """The cluster followed: its keys, and the cluster named in every report."""
        self.failure = failure
        self.fence = fence
        self.loop = loop
        self.settings = RoutingSettings(config.max_standby_lag_bytes, config.fallback_to_master)
        self.watch_store = store_config.open()
        self.lease_store = store_config.open()
        self.counters = counters if counters is not None else StoreCounters()
        """Shared by the followers of a succession, so that the metrics keep counting."""
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.watcher = self.watch_store.watcher(idle_timeout=WATCH_IDLE_TIMEOUT)
        self.lease: Lease | None = None
        self.published_generation = -1
        """Generation in the published document; -1 when it must be published."""
        self.published_on: int | None = None
        """The lease the document was published on."""
        self.last_renewal = 0.0
        self.reported_problems: frozenset[str] = frozenset()
        self.threads = [
            threading.Thread(target=failure.thread_target(name, body), name=name, daemon=True)
            for name, body in (("proxy-watch", self.watch_loop), ("proxy-lease", self.lease_loop))
        ]

    def request_stats(self) -> tuple[RequestStats, ...]:
        """The etcd clients' request counts (watch and lease), for the metrics."""
        return (self.watch_store.client.transport.stats, self.lease_store.client.transport.stats)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop both threads, then revoke the lease (our key disappears at once)."""
        self.stopping.set()
        self.wake.set()
        self.watcher.close()
        for thread in self.threads:
            thread.join(timeout=5)
        lease = self.lease
        if lease is not None:
            try:
                self.lease_store.client.revoke_lease(lease.id)
            except EtcdError as error:
                log.warning("could not revoke the proxy lease: %s", error)
        self.watch_store.client.close()
        self.lease_store.client.close()

    def post(self, callback: Callable[..., None], *arguments: Any) -> None:
        """Run `callback` on the loop; an unexpected error in it ends the proxy."""
        guarded = self.failure.guarded(f"store report {callback.__name__}", callback)
        try:
            self.loop.call_soon_threadsafe(guarded, *arguments)
        except RuntimeError:  # the loop is closed: we are shutting down
            self.stopping.set()

    # -- the watch thread ------------------------------------------------------

    def watch_loop(self) -> None:
        keys: dict[str, KeyValue] = {}
        label = 0
        own_key = self.watch_store.keys.member(KeyKind.PROXY, self.config.id)
        while not self.stopping.is_set():
            try:
                for update in self.watcher.updates():
                    label = apply_update(keys, update, label)
                    if own_key not in keys and self.published_generation >= 0:
                        self.published_generation = -1  # deleted: the lease thread publishes
                        self.wake.set()
                    if update.snapshot is not None or self.matters(update):
                        self.post(self.fence.offer, self.routes_of(keys.values(), label))
            except EtcdError as error:
                self.counters.watch_errors += 1
                log.warning("watching the store failed: %s", error)
                self.stopping.wait(RETRY_DELAY)
            # Any other error ends the thread, and SafetyFailure the proxy: retrying would
            # keep a proxy that renews its lease but no longer follows the routes.

    def matters(self, update: WatchUpdate) -> bool:
        for event in update.events:
            parsed = self.watch_store.keys.parse(event.item.key)
            if parsed is not None and parsed[0] in ROUTING_KINDS:
                return True
        return False

    def routes_of(self, items: Any, revision: int) -> Routes:
        view = build_view(self.watch_store.keys, revision, items)
        problems = frozenset(str(problem) for problem in view.problems)
        for problem in sorted(problems - self.reported_problems):
            log.warning("ignoring a document: %s", problem)
        self.reported_problems = problems
        return compute_routes(view, self.settings, self.cluster)

    # -- the lease thread --------------------------------------------------------

    def lease_loop(self) -> None:
        next_renewal = 0.0
        needs_fresh_view = True
        while not self.stopping.is_set():
            self.wake.wait(max(0.0, next_renewal - clock.monotonic()))
            self.wake.clear()
            if self.stopping.is_set():
                return
            if clock.monotonic() >= next_renewal:
                started = clock.monotonic()
                next_renewal = started + self.timing_value("renew_interval")
                if started - self.last_renewal >= self.timing_value("proxy_close_deadline"):
                    needs_fresh_view = True  # the loop is, or will be, fenced
                needs_fresh_view = not self.renew(started, needs_fresh_view)
            elif self.acknowledged_generation() != self.published_generation:
                self.publish()

    def timing_value(self, name: str) -> float:
        routes = self.fence.store_routes or Routes()
        return float(getattr(routes.timing, name))

    def renew(self, started: float, needs_fresh_view: bool) -> bool:
        """Renew (or take) the lease and publish; True when it all succeeded.

        A fresh view is read first when needed (it also gives the lease TTL).
        A replaced lease is revoked only after the document is on the new one,
        so the proxy's key never disappears while the proxy lives.
        """
        try:
            fresh = None
            if needs_fresh_view or self.lease is None or self.fence.fenced:
                fresh = self.fresh_routes()
            timing = (fresh or self.fence.store_routes or Routes()).timing
            replaced = self.keep_lease(math.ceil(timing.proxy_lease_ttl))
        except EtcdError as error:
            self.counters.lease_errors += 1
            log.warning("renewing the proxy lease failed: %s", error)
            return False
        self.counters.renewals += 1
        self.last_renewal = started
        self.post(self.fence.renewed, started, fresh, self.cluster)
        published = self.is_published() or self.publish()
        if published and replaced is not None:
            self.revoke_quietly(replaced)
        return published and replaced is None

    def keep_lease(self, ttl: int) -> Lease | None:
        """Keep our lease alive, or take a new one; returns a lease to revoke once replaced."""
        lease = self.lease
        if (
            lease is not None
            and lease.ttl == ttl
            and not outlived(self.last_renewal, clock.monotonic(), ttl)
        ):
            try:
                close = self.timing_value("proxy_close_deadline")
                deadline = renewal_deadline(clock.monotonic(), self.last_renewal, close, ttl)
                self.lease_store.client.keepalive(lease.id, deadline)
                return None
            except EtcdLeaseExpired:
                log.warning("the proxy lease expired: taking a new one")
                lease = None
        self.lease = self.lease_store.client.grant_lease(ttl)
        self.counters.lease_grants += 1
        return lease

    def revoke_quietly(self, lease: Lease) -> None:
        try:
            self.lease_store.client.revoke_lease(lease.id)
        except EtcdError as error:
            log.info("could not revoke the replaced proxy lease: %s", error)

    def fresh_routes(self) -> Routes:
        view = self.lease_store.read_view()
        return compute_routes(view, self.settings, self.cluster)

    def acknowledged_generation(self) -> int:
        """The generation of this cluster in force (0 while another cluster's routes are)."""
        return self.fence.acknowledged_generation_of(self.cluster)

    def is_published(self) -> bool:
        """Whether the store has our document with the applied generation, on our lease."""
        lease_id = self.lease.id if self.lease is not None else None
        current = (self.acknowledged_generation(), lease_id)
        return current == (self.published_generation, self.published_on)

    def publish(self) -> bool:
        lease = self.lease
        if lease is None:
            return False
        generation = self.acknowledged_generation()
        info = ProxyInfo(
            id=self.config.id,
            listen_addresses=tuple(
                str(address)
                for address in (self.config.read_write_listen, self.config.read_only_listen)
                if address is not None
            ),
            acknowledged_proxy_generation=generation,
            observed_at=time.time(),
            api_url=self.config.api.url,
        )
        try:
            self.lease_store.publish_proxy(info, lease.id)
        except EtcdError as error:
            self.counters.publish_errors += 1
            log.warning("publishing the proxy document failed: %s", error)
            return False
        self.published_generation = generation
        self.published_on = lease.id
        return True


def apply_update(keys: dict[str, KeyValue], update: WatchUpdate, label: int) -> int:
    """Bring `keys` up to date; returns the revision the keys are now complete up to."""
    if update.snapshot is not None:
        keys.clear()
        keys.update((item.key, item) for item in update.snapshot.items)
        return update.snapshot.revision
    for event in update.events:
        if event.kind is EventKind.DELETE:
            keys.pop(event.item.key, None)
        else:
            keys[event.item.key] = event.item
        label = max(label, event.item.mod_revision)
    return label
