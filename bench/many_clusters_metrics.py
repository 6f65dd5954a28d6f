"""What bench/many_clusters.py reads at each sample, and the step result made of three samples.

etcd: /metrics of every member (Prometheus text; counters and histograms are
summed over members) and each member's CPU time from /proc. The load: the
fake keepers' counters (bench/fleet.py) and the sentinels' logs. The machine:
/proc/stat.
"""

from __future__ import annotations

import itertools
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.fleet import LATENCY_BOUNDS, quantile
from bench.side_by_side import cpu_seconds
from tests.harness.etcd import EtcdCluster

ETCD_HISTOGRAMS = {
    "grpc": "grpc_server_handling_seconds",
    "wal_fsync": "etcd_disk_wal_fsync_duration_seconds",
}
STREAMS_LEFT_OUT = ("Watch", "Snapshot")
"""gRPC methods whose calls are long-lived streams: neither requests per second nor latency.
A LeaseKeepAlive through the JSON gateway is one short stream per keepalive: it counts."""
LINE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')
LATE_FRACTION = 0.25
"""Saturated once the fake keepers' p99 renewal lateness exceeds this part of the interval."""
BUSY_MACHINE = 95.0


class LoadView(Protocol):
    """What a sample reads of the load clusters (many_clusters.LoadClusters)."""

    def fleet_stats(self) -> list[dict[str, Any]]: ...
    def sentinel_problems(self) -> int: ...
    def pids(self) -> list[int]: ...
    def dead_processes(self) -> int: ...


@dataclass
class Sample:
    at: float  # monotonic
    wall: float
    member_cpu: list[float]  # CPU seconds of each etcd member
    requests: float  # gRPC calls started, Watch streams left out, all members
    histograms: dict[str, dict[float, float]]  # name -> le -> cumulative count, all members
    gauges: dict[str, float]  # the largest value any member reports
    fleet: dict[str, Any]  # counters, warnings and histograms summed over processes
    sentinel_problems: int
    machine: tuple[float, float]  # busy and total jiffies of every core
    load_cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds
    dead_processes: int = 0


def parse_metrics(text: str, sample: Sample) -> None:
    """Add one member's /metrics to `sample`."""
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        name, labels_text, value_text = match.groups()
        labels = dict(LABEL.findall(labels_text or ""))
        value = float(value_text)
        if labels.get("grpc_method") in STREAMS_LEFT_OUT:
            continue
        if name == "grpc_server_started_total":
            sample.requests += value
        for key, metric in ETCD_HISTOGRAMS.items():
            if name == f"{metric}_bucket":
                buckets = sample.histograms.setdefault(key, {})
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
        if name in ("etcd_mvcc_db_total_size_in_bytes", "etcd_server_leader_changes_seen_total"):
            sample.gauges[name] = max(sample.gauges.get(name, 0.0), value)


def machine_jiffies() -> tuple[float, float]:
    """(busy, total) CPU time of every core since boot, from /proc/stat."""
    values = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def merged_fleet(processes: list[dict[str, Any]]) -> dict[str, Any]:
    counters: dict[str, float] = {}
    warnings: dict[str, float] = {}
    histograms: dict[str, list[float]] = {}
    for stats in processes:
        for total, part in ((counters, stats["counters"]), (warnings, stats["warnings"])):
            for name, value in part.items():
                total[name] = total.get(name, 0) + value
        for name, counts in stats["histograms"].items():
            known = histograms.setdefault(name, [0.0] * len(counts))
            histograms[name] = [a + b for a, b in zip(known, counts, strict=True)]
    return {"counters": counters, "warnings": warnings, "histograms": histograms}


def take_sample(etcd: EtcdCluster, load: LoadView) -> Sample:
    sample = Sample(
        at=time.monotonic(), wall=time.time(),
        member_cpu=[cpu_seconds(member.pid) for member in etcd.members],
        requests=0.0, histograms={}, gauges={},
        fleet=merged_fleet(load.fleet_stats()), sentinel_problems=load.sentinel_problems(),
        machine=machine_jiffies(), dead_processes=load.dead_processes(),
    )  # fmt: skip
    for member in etcd.members:
        status, body = member.http_get("/metrics", timeout=30.0)
        if status == 200:
            parse_metrics(body.decode(), sample)
    for pid in load.pids():
        try:
            sample.load_cpu[pid] = cpu_seconds(pid)
        except OSError:
            continue
    return sample


# -- the step --------------------------------------------------------------------------------


@dataclass
class StepResult:
    clusters: int
    healthy_load_clusters: int
    window_seconds: float
    etcd_cpu_percent: float  # of one core, summed over the members
    busiest_member_cpu_percent: float
    requests_per_second: float
    grpc_p99_ms: float | None
    wal_fsync_p99_ms: float | None
    keepalive_p99_ms: float | None  # the fake keepers' own round trips
    publish_p99_ms: float | None
    renewal_lateness_p99_ms: float | None
    machine_cpu_percent: float  # of the whole machine
    load_cpu_percent: float  # of one core: fake keepers and load sentinels
    db_size_mib: float
    etcd_leader_changes: float
    keeper_errors: int  # failed renewals and publishes, crashed fake keepers; whole step
    keeper_warnings: int  # warnings the agents' code logged in the fake keepers
    fences: int  # a real master would have fenced
    sentinel_problems: int
    load_failovers: int
    dead_processes: int
    failover_seconds: list[float | None]
    saturated: str | None

    @property
    def failover_median(self) -> float | None:
        measured = [seconds for seconds in self.failover_seconds if seconds is not None]
        return statistics.median(measured) if measured else None

    def describe(self) -> str:
        def ms(value: float | None) -> str:
            return f"{value:.1f} ms" if value is not None else "-"

        median = self.failover_median
        failover = f"{median:.2f} s" if median is not None else "no recovery"
        return (
            f"N={self.clusters}: etcd {self.etcd_cpu_percent:.0f} % CPU (busiest member "
            f"{self.busiest_member_cpu_percent:.0f} %), {self.requests_per_second:.0f} req/s, "
            f"p99 gRPC {ms(self.grpc_p99_ms)}, WAL fsync {ms(self.wal_fsync_p99_ms)}, keepalive "
            f"{ms(self.keepalive_p99_ms)}; keeper errors {self.keeper_errors}, warnings "
            f"{self.keeper_warnings}, fences {self.fences}; sentinel problems "
            f"{self.sentinel_problems}; load failovers {self.load_failovers}; machine "
            f"{self.machine_cpu_percent:.0f} %, load generators {self.load_cpu_percent:.0f} %; "
            f"failover median {failover}"
        )


def histogram_p99(name: str, later: Sample, earlier: Sample) -> float | None:
    """p99 in ms of an etcd histogram between two samples (cumulative `le` buckets)."""
    cumulative, before = later.histograms.get(name, {}), earlier.histograms.get(name, {})
    bounds = sorted(cumulative)
    if not bounds:
        return None
    totals = [cumulative[bound] - before.get(bound, 0.0) for bound in bounds]
    counts = [totals[0], *(after - below for below, after in itertools.pairwise(totals))]
    found = quantile(bounds, counts, 0.99)
    return found * 1000 if found is not None else None


def fleet_p99(name: str, later: Sample, earlier: Sample) -> float | None:
    after = later.fleet["histograms"].get(name, [0] * len(LATENCY_BOUNDS))
    before = earlier.fleet["histograms"].get(name, [0] * len(LATENCY_BOUNDS))
    found = quantile(LATENCY_BOUNDS, [a - b for a, b in zip(after, before, strict=True)], 0.99)
    return found * 1000 if found is not None else None


def counted(later: Sample, earlier: Sample, *names: str) -> int:
    def total(sample: Sample) -> float:
        return float(sum(sample.fleet["counters"].get(name, 0) for name in names))

    return int(total(later) - total(earlier))


def saturation(result: StepResult, interval: float) -> str | None:
    """Why the machine counts as saturated after this step (None: it does not)."""
    reasons = []
    if result.healthy_load_clusters < result.clusters - 1:
        reasons.append(f"only {result.healthy_load_clusters} load clusters became healthy")
    lateness = result.renewal_lateness_p99_ms
    if lateness is not None and lateness > LATE_FRACTION * interval * 1000:
        reasons.append(f"fake keepers renew late (p99 {lateness:.0f} ms behind the interval)")
    if result.machine_cpu_percent > BUSY_MACHINE:
        reasons.append(f"machine CPU at {result.machine_cpu_percent:.0f} %")
    if result.dead_processes:
        reasons.append(f"{result.dead_processes} load processes died")
    return "; ".join(reasons) or None


def summarize(
    clusters: int,
    healthy: int,
    samples: tuple[Sample, Sample, Sample],
    load_failovers: int,
    failover_seconds: Sequence[float | None],
    interval: float,
) -> StepResult:
    """The window is first..second; errors count over first..third (failovers included)."""
    first, second, third = samples
    seconds = second.at - first.at
    cpu = zip(first.member_cpu, second.member_cpu, strict=True)
    member_percent = [(after - before) / seconds * 100 for before, after in cpu]
    busy = second.machine[0] - first.machine[0]
    total = second.machine[1] - first.machine[1]
    shared = set(first.load_cpu) & set(second.load_cpu)
    load_cpu = sum(second.load_cpu[pid] - first.load_cpu[pid] for pid in shared)
    warnings = sum(third.fleet["warnings"].values()) - sum(first.fleet["warnings"].values())
    leader_changes = "etcd_server_leader_changes_seen_total"
    result = StepResult(
        clusters=clusters,
        healthy_load_clusters=healthy,
        window_seconds=seconds,
        etcd_cpu_percent=sum(member_percent),
        busiest_member_cpu_percent=max(member_percent),
        requests_per_second=(second.requests - first.requests) / seconds,
        grpc_p99_ms=histogram_p99("grpc", second, first),
        wal_fsync_p99_ms=histogram_p99("wal_fsync", second, first),
        keepalive_p99_ms=fleet_p99("renewal", second, first),
        publish_p99_ms=fleet_p99("publish", second, first),
        renewal_lateness_p99_ms=fleet_p99("renewal_lateness", second, first),
        machine_cpu_percent=busy / total * 100 if total else 0.0,
        load_cpu_percent=load_cpu / seconds * 100,
        db_size_mib=third.gauges.get("etcd_mvcc_db_total_size_in_bytes", 0.0) / 2**20,
        etcd_leader_changes=third.gauges.get(leader_changes, 0)
        - first.gauges.get(leader_changes, 0),
        keeper_errors=counted(third, first, "renewal_failures", "publish_errors", "crashes"),
        keeper_warnings=int(warnings),
        fences=counted(third, first, "fences"),
        sentinel_problems=third.sentinel_problems - first.sentinel_problems,
        load_failovers=load_failovers,
        dead_processes=third.dead_processes,
        failover_seconds=list(failover_seconds),
        saturated=None,
    )
    result.saturated = saturation(result, interval)
    return result
