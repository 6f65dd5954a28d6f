"""The keeper's HTTP API: its health checks and metrics, read from the running keeper."""

from __future__ import annotations

import math

from rhizome import clock
from rhizome.api.agent_metrics import etcd_samples, uptime_sample
from rhizome.api.exposition import CONTENT_TYPE, render
from rhizome.api.keeper_checks import KeeperSnapshot, keeper_routes
from rhizome.api.keeper_metrics import keeper_samples
from rhizome.api.requests import Handler, Page, Request
from rhizome.keeper.loop import Keeper


def snapshot(keeper: Keeper) -> KeeperSnapshot:
    """What `keeper` knows now; read from other threads without locks (whole replacements)."""
    name = keeper.config.name
    stored = keeper.follower.view().state
    state = stored.document if stored is not None else None
    lease = keeper.lease
    now = clock.monotonic()
    return KeeperSnapshot(
        name=name,
        info=keeper.published,
        assigned_master=state is not None and state.master == name,
        synchronous=state is not None and name in state.synchronous_standbys.promotable,
        may_accept_writes=keeper.postmaster.running and keeper.postmaster.may_accept_writes,
        lease_age=lease.holder.seconds_since_renewal() if lease is not None else math.inf,
        lease_fresh=lease is not None and lease.fresh(),
        loop_age=now - keeper.passed_at,
        watchdog_age=now - keeper.heartbeat_at,
    )


def routes(keeper: Keeper) -> dict[str, Handler]:
    started = clock.monotonic()

    def metrics(request: Request) -> Page:
        samples = [
            *keeper_samples(snapshot(keeper)),
            *etcd_samples("keeper", keeper.store.client.transport.stats),
            uptime_sample("keeper", clock.monotonic() - started),
        ]
        return 200, CONTENT_TYPE, render(samples).encode()

    return {**keeper_routes(lambda: snapshot(keeper)), "/metrics": metrics}
