"""Following a successor cluster after a major-upgrade cutover (docs/design/major-upgrade.md).

At the end of a cutover the old cluster's state names its `successor` and
routes nowhere: the proxy holds new read-write clients and has closed every
session to the old master. The proxy then

1. follows the successor's keys with a new `StoreFollower` (same etcd, same
   store root, the successor's cluster name): it takes a lease there and
   publishes its document under the successor's `proxies/`, so that the
   successor's sentinel waits for its acknowledgements on the successor's
   failovers and switchovers, and it routes by the successor's view;
2. stops the old cluster's follower, whose revoked lease removes its
   document there.

The fence switches first (`StoreFence.follow`): nothing is forwarded until
the successor's own routes come with a renewal with a fresh view, and the old
cluster's later reports are ignored whatever their revision. The two
clusters' generations are unrelated numbers: the successor's follower
acknowledges 0 until the successor's own routes are in force.

A proxy whose configured cluster already has a successor when it starts
walks the chain the same way, so a restarted proxy keeps working without a
change of configuration. A successor already in the chain (a loop) is
refused with an error: the proxy stays with the cluster it follows, whose
routes name a successor and therefore route nowhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from rhizome.config import StoreConfig
from rhizome.proxy.config import ProxyConfig
from rhizome.proxy.failure import SafetyFailure
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.follower import StoreFollower
from rhizome.proxy.metrics import StoreCounters
from rhizome.proxy.routing import Routes

log = logging.getLogger(__name__)


class Succession:
    """The follower of the cluster the proxy follows now, and the moves to successors."""

    def __init__(
        self,
        store_config: StoreConfig,
        config: ProxyConfig,
        fence: StoreFence,
        loop: asyncio.AbstractEventLoop,
        failure: SafetyFailure,
    ) -> None:
        self.store_config = store_config
        self.config = config
        self.fence = fence
        self.loop = loop
        self.failure = failure
        self.counters = StoreCounters()
        """One set of store counters across every cluster followed."""
        self.chain = [store_config.cluster]
        """Every cluster followed since the start, the configured one first."""
        self.refused: str | None = None
        """The successor last refused (a loop), so that the error is logged once."""
        self.retiring: list[asyncio.Future[None]] = []
        """Followers of clusters left behind, being stopped."""
        self.follower_started: Callable[[StoreFollower], None] = lambda follower: None
        """Called with every follower of a successor (status.py counts its requests)."""
        fence.cluster = store_config.cluster
        fence.successor_named = self.successor_named
        self.follower = self.follower_of(store_config.cluster)

    @property
    def cluster(self) -> str:
        """The cluster followed now."""
        return self.chain[-1]

    def follower_of(self, cluster: str) -> StoreFollower:
        store_config = dataclasses.replace(self.store_config, cluster=cluster)
        follower = StoreFollower(
            store_config, self.config, self.fence, self.loop, self.failure, self.counters
        )
        self.fence.wake_publisher = follower.wake.set
        return follower

    def start(self) -> None:
        self.follower.start()

    def successor_named(self, routes: Routes) -> None:
        """On the loop: routes of the cluster followed name a successor; follow it."""
        successor = routes.successor
        if successor is None or routes.cluster != self.cluster:
            return
        if successor in self.chain:
            self.refuse(successor)
            return
        log.info("following cluster %s, the successor of %s", successor, routes.cluster)
        self.fence.follow(successor)  # from here on, nothing of the old cluster is applied
        previous = self.follower
        self.chain.append(successor)
        self.refused = None
        self.follower = self.follower_of(successor)
        self.follower_started(self.follower)
        self.follower.start()
        retiring = self.loop.run_in_executor(None, previous.stop)
        retiring.add_done_callback(lambda future: report_stop_failure(previous, future))
        self.retiring.append(retiring)

    def refuse(self, successor: str) -> None:
        """A successor chain that returns to a cluster already followed: stay, route nowhere."""
        if self.refused == successor:
            return
        self.refused = successor
        chain = " -> ".join([*self.chain, successor])
        log.error(
            "not following cluster %s, named successor of %s: the successor chain %s returns"
            " to a cluster already followed; routing nowhere until a state names another"
            " successor (or none)",
            successor,
            self.cluster,
            chain,
        )

    async def stop(self) -> None:
        """Stop the current follower (revoking its lease) and wait for the retiring ones."""
        await self.loop.run_in_executor(None, self.follower.stop)
        await asyncio.gather(*self.retiring, return_exceptions=True)


def report_stop_failure(follower: StoreFollower, future: asyncio.Future[None]) -> None:
    """A follower left behind that failed to stop: its lease expires by itself."""
    if not future.cancelled() and future.exception() is not None:
        log.error(
            "stopping the follower of cluster %s failed: %s", follower.cluster, future.exception()
        )
