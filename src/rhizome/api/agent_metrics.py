"""Metrics every agent serves (its etcd requests, its uptime) and the /metrics handler."""

from __future__ import annotations

from collections.abc import Callable

from rhizome import clock
from rhizome.api.exposition import CONTENT_TYPE, Sample, render
from rhizome.api.requests import Handler, Page, Request
from rhizome.etcd.stats import RequestStats


def etcd_samples(agent: str, stats: RequestStats) -> list[Sample]:
    """Requests to etcd since the agent started (the same names for every agent)."""
    labels = {"agent": agent}
    return [
        Sample("rhizome_etcd_requests_total", "counter", "Requests to etcd, by outcome.",
               (({**labels, "outcome": "ok"}, float(stats.succeeded)),
                ({**labels, "outcome": "error"}, float(stats.failed)))),
        Sample("rhizome_etcd_request_seconds_total", "counter",
               "Seconds spent in requests to etcd (divide by the requests for the mean).",
               ((labels, round(stats.seconds, 6)),)),
    ]  # fmt: skip


def uptime_sample(agent: str, seconds: float) -> Sample:
    return Sample(
        "rhizome_agent_uptime_seconds",
        "gauge",
        "Seconds since the agent started.",
        (({"agent": agent}, round(seconds, 3)),),
    )


def metrics_handler(
    agent: str, samples_of: Callable[[], list[Sample]], stats: RequestStats
) -> Handler:
    """/metrics of `agent`: its own samples, then its etcd requests and uptime."""
    started = clock.monotonic()

    def metrics(request: Request) -> Page:
        samples = [
            *samples_of(),
            *etcd_samples(agent, stats),
            uptime_sample(agent, clock.monotonic() - started),
        ]
        return 200, CONTENT_TYPE, render(samples).encode()

    return metrics
