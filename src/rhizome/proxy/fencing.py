"""Routes from the store, in force only while the proxy's lease is known to live.

The store follower's threads report here (through `call_soon_threadsafe`):
routes from the watch, and every successful lease renewal. A proxy that has
not renewed its lease for `proxy_close_deadline` seconds is *fenced*: it
routes nowhere (every connection closed, new ones held) because its lease may
expire soon and the sentinel would then promote another master without
waiting for it. It leaves the fence only after a renewal that came with a
fresh read of the store, so it never routes by a view older than its outage.

The deadline holds whatever order the event loop runs things in: the data
path checks it on every chunk toward a server (pipes.py) and calls
`fence_if_overdue`, and so does every report from the store threads before
it is applied. A report queued before a freeze (or a renewal sent after the
deadline passed) therefore finds the proxy fenced, and a renewal extends the
deadline only to `started_at + proxy_close_deadline`, counted from when its
request was sent.

Routes and renewals carry the cluster they come from. After a major-upgrade
cutover the proxy follows the old cluster's successor (succession.py):
`follow` switches the fence to the successor, which routes nowhere until
the successor's own routes come with a renewal with a fresh view, and from
then on reports of the old cluster are ignored, whatever their revision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from rhizome import clock
from rhizome.proxy.dispatcher import Dispatcher
from rhizome.proxy.routing import Routes

log = logging.getLogger(__name__)


class StoreFence:
    """Owns the routes from the store and the lease close deadline."""

    def __init__(
        self, dispatcher: Dispatcher, wake_publisher: Callable[[], None], cluster: str = ""
    ) -> None:
        self.dispatcher = dispatcher
        self.wake_publisher = wake_publisher
        self.cluster = cluster
        """The cluster whose routes are followed; reports of any other are ignored."""
        self.successor_named: Callable[[Routes], None] = lambda routes: None
        """Called with routes of the followed cluster that name a successor."""
        self.store_routes: Routes | None = None
        self.fenced = True
        """True until the first renewal with a fresh view, and after a missed deadline."""
        self.timer: asyncio.TimerHandle | None = None
        self.deadline_callback: Callable[[], None] = self.check_deadline
        """What the deadline timer runs (main.py guards it against unexpected errors)."""
        self.halted = False
        """True once the proxy is ending after a failure: nothing is routed again."""
        dispatcher.acknowledged = lambda: self.wake_publisher()  # a drain ended
        dispatcher.overdue = self.fence_if_overdue

    @property
    def acknowledged_generation(self) -> int:
        """The proxy generation whose routes are in force (connections already closed)."""
        return self.dispatcher.applied_generation

    def acknowledged_generation_of(self, cluster: str) -> int:
        """What the proxy acknowledges to `cluster`'s sentinel (callable from any thread).

        0 while routes of another cluster are in force: their generation is an
        unrelated number, and 0 acknowledges nothing a sentinel waits for.
        """
        applied_cluster, generation = self.dispatcher.acknowledgement
        return generation if applied_cluster == cluster else 0

    def offer(self, routes: Routes) -> None:
        """Routes read from the store; older than those in hand, or of another cluster: ignored."""
        if self.halted or routes.cluster != self.cluster:
            return
        self.fence_if_overdue()
        current = self.store_routes
        if current is not None and routes.revision < current.revision:
            return
        self.store_routes = routes
        if current is None or not routes.same_targets(current):
            if current is None or routes.proxy_generation != current.proxy_generation:
                log.info(
                    "proxy generation %d: read-write to %s",
                    routes.proxy_generation,
                    routes.master or "nowhere (holding new connections)",
                )
            self.apply()
        if routes.successor is not None:
            self.successor_named(routes)

    def renewed(self, started_at: float, fresh: Routes | None, cluster: str | None = None) -> None:
        """The lease was renewed by a request sent at `started_at` (monotonic).

        `cluster`: whose lease it is; None for the cluster followed (a failsafe
        confirmation). A renewal of a cluster no longer followed proves nothing.
        """
        if self.halted or (cluster is not None and cluster != self.cluster):
            return
        self.fence_if_overdue()  # a deadline missed before this report was run stays missed
        if fresh is not None:
            self.offer(fresh)
            if fresh.cluster != self.cluster:
                return  # it named a successor, followed from now on: this lease is not its
        timing = (self.store_routes or Routes()).timing
        deadline = started_at + timing.proxy_close_deadline
        self.dispatcher.forward_until = max(self.dispatcher.forward_until, deadline)
        self.schedule_check()
        if self.fenced and fresh is not None and clock.monotonic() < deadline:
            self.fenced = False
            log.info("store reachable and lease renewed: forwarding")
            self.apply()

    def schedule_check(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        delay = max(0.0, self.dispatcher.forward_until - clock.monotonic())
        self.timer = asyncio.get_running_loop().call_later(delay, self.deadline_callback)

    def check_deadline(self) -> None:
        self.timer = None
        if clock.monotonic() < self.dispatcher.forward_until:
            self.schedule_check()
            return
        self.fence_if_overdue()

    def fence_if_overdue(self) -> None:
        """Fence now if the close deadline passed, whether or not its timer ran yet."""
        if not self.fenced and clock.monotonic() >= self.dispatcher.forward_until:
            self.fenced = True
            log.warning(
                "lease not renewed for proxy_close_deadline: closing every connection and"
                " holding new ones until the store answers again"
            )
            self.apply()

    def follow(self, cluster: str) -> None:
        """Follow `cluster` (a successor) from now on: route nowhere until its routes arrive.

        The routes in hand keep their revision (the successor's views, read
        later from the same etcd, are newer) and their timing until the
        successor's own arrive; their generation is not carried over.
        """
        previous = self.store_routes or Routes()
        self.cluster = cluster
        self.fenced = True
        self.store_routes = Routes(
            revision=previous.revision,
            cluster=cluster,
            timing=previous.timing,
            failsafe=previous.failsafe,
        )
        self.apply()

    def apply(self) -> None:
        routes = self.store_routes or Routes()
        self.dispatcher.apply(routes.nowhere() if self.fenced else routes)
        self.wake_publisher()

    def halt(self) -> None:
        """For good (the proxy is ending): forward nothing, close everything, accept nothing."""
        self.halted = True
        self.fenced = True
        self.dispatcher.forward_until = 0.0
        self.stop()
        self.dispatcher.shutdown()  # closes every session at once, whatever failed in `apply`
        self.dispatcher.routes = self.dispatcher.routes.nowhere()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
