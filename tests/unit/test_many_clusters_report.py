"""The pure text of bench/many_clusters.py's report: slowdown, saturation, extrapolation."""

from __future__ import annotations

import dataclasses

from bench.many_clusters_metrics import StepResult
from bench.many_clusters_report import Context, render, slowdown

TIMING = {
    "keeper_publish_interval": 1.0, "keeper_lease_ttl": 5.0, "fence_deadline": 3.5,
    "renew_interval": 1.0,
}  # fmt: skip
CONTEXT = Context("2026-12-06", "vm", 2, "3.4.23", TIMING, busy=True, window=30.0, trials=3)


def step(clusters: int, failovers: list[float | None], machine: float) -> StepResult:
    return StepResult(
        clusters=clusters, healthy_load_clusters=clusters - 1, window_seconds=30.0,
        etcd_cpu_percent=0.4 * clusters, busiest_member_cpu_percent=0.15 * clusters,
        requests_per_second=7.0 * clusters, grpc_p99_ms=5.0, wal_fsync_p99_ms=2.0,
        keepalive_p99_ms=0.8 * clusters, publish_p99_ms=9.0, renewal_lateness_p99_ms=1.0,
        machine_cpu_percent=machine, load_cpu_percent=1.2 * clusters, db_size_mib=1.0,
        etcd_leader_changes=0.0, keeper_errors=0, keeper_warnings=0, fences=0,
        sentinel_problems=0, load_failovers=0, dead_processes=0,
        failover_seconds=failovers, saturated=None,
    )  # fmt: skip


def test_slowdown_compares_the_first_and_last_measured_failovers():
    text = slowdown([step(10, [5.0, 5.1, 4.9], 18.0), step(50, [6.8, None, 6.6], 71.0)])
    assert "From N=10 to N=50 the failover median grew by 1.70 s" in text
    assert "stayed at 40 ms or less" in text  # the agents' keepalive p99, the larger one
    assert "71 % of its cores" in text


def test_no_slowdown_sentence_from_a_single_step():
    assert slowdown([step(10, [5.0], 18.0)]) == ""


def test_report_names_the_step_that_saturated_before_it_was_measured():
    context = dataclasses.replace(CONTEXT, unmeasured="N=100: no etcd member answered")
    text = render([step(10, [5.0], 18.0), step(50, [6.0], 70.0)], context, "plot.png")
    assert "Not measured, the machine saturated while the load grew: N=100" in text
    assert "| 50 |" in text and "clusters** of this load" in text
    assert "Not measured" not in render([step(10, [5.0], 18.0)], CONTEXT, "plot.png")
