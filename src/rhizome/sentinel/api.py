"""The sentinel's HTTP API: its health checks and the cluster's metrics, from the sentinel."""

from __future__ import annotations

from rhizome import clock
from rhizome.api.agent_metrics import etcd_samples, uptime_sample
from rhizome.api.exposition import CONTENT_TYPE, render
from rhizome.api.requests import Handler, Page, Request
from rhizome.api.sentinel_pages import SentinelSnapshot, sentinel_routes, sentinel_samples
from rhizome.sentinel.runner import Sentinel


def snapshot(sentinel: Sentinel) -> SentinelSnapshot:
    view = sentinel.follower.view() if sentinel.follower.synchronized else None
    return SentinelSnapshot(
        sentinel_id=sentinel.sentinel_id,
        view=view,
        leader=view is not None and sentinel.is_leader(view),
        lease_age=sentinel.lease.seconds_since_renewal(),
        loop_age=clock.monotonic() - sentinel.ticked_at,
    )


def routes(sentinel: Sentinel) -> dict[str, Handler]:
    started = clock.monotonic()

    def metrics(request: Request) -> Page:
        samples = [
            *sentinel_samples(snapshot(sentinel)),
            *etcd_samples("sentinel", sentinel.store.client.transport.stats),
            uptime_sample("sentinel", clock.monotonic() - started),
        ]
        return 200, CONTENT_TYPE, render(samples).encode()

    return {**sentinel_routes(lambda: snapshot(sentinel)), "/metrics": metrics}
