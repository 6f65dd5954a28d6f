"""Metrics every agent serves: its etcd requests and its uptime (pure)."""

from __future__ import annotations

from rhizome.api.exposition import Sample
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
