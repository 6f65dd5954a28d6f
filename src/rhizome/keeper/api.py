"""The keeper's HTTP API: its health checks and metrics, read from the running keeper."""

from __future__ import annotations

import math

from rhizome import clock
from rhizome.api.agent_metrics import metrics_handler
from rhizome.api.keeper_checks import KeeperSnapshot, keeper_routes
from rhizome.api.keeper_metrics import keeper_samples
from rhizome.api.requests import Handler
from rhizome.failsafe.responder import failsafe_page
from rhizome.keeper.loop import Keeper
from rhizome.store.positions import standby_lags


def snapshot(keeper: Keeper) -> KeeperSnapshot:
    """What `keeper` knows now; read from other threads without locks (whole replacements)."""
    name = keeper.config.name
    view = keeper.follower.view()
    state = view.state.document if view.state is not None else None
    info = keeper.observed  # not the published one: etcd may be unreachable
    lag = None
    if info is not None and state is not None:
        observations = {other: stored.document for other, stored in view.keepers.items()}
        lag = standby_lags(state, {**observations, name: info}).get(name)
    lease = keeper.lease
    now = clock.monotonic()
    return KeeperSnapshot(
        name=name,
        info=info,
        lag_bytes=lag,
        assigned_master=state is not None and state.master == name,
        synchronous=state is not None and name in state.synchronous_standbys.promotable,
        may_accept_writes=keeper.postmaster.running and keeper.postmaster.may_accept_writes,
        lease_age=lease.holder.seconds_since_renewal() if lease is not None else math.inf,
        lease_fresh=lease is not None and lease.fresh(),
        loop_age=now - keeper.passed_at,
        watchdog_age=now - keeper.heartbeat_at,
        watchdog_interval=lease.heartbeat_interval if lease is not None else 0.0,
        failsafe=keeper.failsafe.counts(),
    )


def routes(keeper: Keeper) -> dict[str, Handler]:
    stats = keeper.store.client.transport.stats
    metrics = metrics_handler("keeper", lambda: keeper_samples(snapshot(keeper)), stats)
    failsafe = failsafe_page(keeper.failsafe.api.authenticated, keeper.failsafe.confirm)
    return {**keeper_routes(lambda: snapshot(keeper)), "/metrics": metrics, "/failsafe": failsafe}
