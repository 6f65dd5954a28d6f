"""The sentinel's HTTP API: its health checks and the cluster's metrics, from the sentinel."""

from __future__ import annotations

from rhizome import clock
from rhizome.api.agent_metrics import metrics_handler
from rhizome.api.requests import Handler
from rhizome.api.sentinel_pages import SentinelSnapshot, sentinel_routes, sentinel_samples
from rhizome.sentinel.runner import Sentinel


def snapshot(sentinel: Sentinel) -> SentinelSnapshot:
    view = sentinel.follower.view() if sentinel.follower.synchronized else None
    return SentinelSnapshot(
        sentinel_id=sentinel.sentinel_id,
        view=view,
        leader=view is not None and sentinel.is_leader(view),
        lease_age=sentinel.lease.seconds_since_renewal(),
        lease_ttl=sentinel.lease.ttl,
        loop_age=clock.monotonic() - sentinel.ticked_at,
    )


def routes(sentinel: Sentinel) -> dict[str, Handler]:
    stats = sentinel.store.client.transport.stats
    metrics = metrics_handler("sentinel", lambda: sentinel_samples(snapshot(sentinel)), stats)
    return {**sentinel_routes(lambda: snapshot(sentinel)), "/metrics": metrics}
