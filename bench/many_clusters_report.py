"""The markdown section, plot and extrapolation of bench/many_clusters.py's results."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.many_clusters_metrics import StepResult
from bench.report import REPORT, write_section
from bench.side_by_side_report import first_line
from rhizome.spec import TimingSettings
from tests.harness.etcd_releases import default_binary

SECTION = "many-clusters"
PLOT = "many-clusters.png"
PLOTS = REPORT.parent / "benchmarks"
PLOT_LINK = "benchmarks"  # relative to docs/benchmarks.md
SCRATCH = REPORT.parent.parent / "build" / "many-clusters-scratch"
DEDICATED_CORES = 2
"""Assumed cores of each dedicated etcd member host."""
DEDICATED_UTILISATION = 0.5
"""Share of a dedicated member's cores etcd may use in steady state: the rest is
headroom for compaction, snapshots, a leader election and a member catching up."""
FULL_SENTINELS, FULL_PROXIES = 3, 3
"""Per cluster in a real deployment; the load clusters here run one sentinel, no proxy."""


@dataclass(frozen=True)
class Context:
    """How the run was set up, for the section's method paragraph."""

    date: str
    node: str
    cores: int
    etcd_version: str
    timing: dict[str, float]
    busy: bool
    window: float
    trials: int
    unmeasured: str | None = None  # the step that saturated the machine before it was measured

    @classmethod
    def now(cls, timing: TimingSettings, busy: bool, window: float, trials: int) -> Context:
        return cls(
            date=time.strftime("%Y-%m-%d"), node=platform.node(), cores=os.cpu_count() or 0,
            etcd_version=first_line([default_binary().etcd, "--version"]).split(":")[-1].strip(),
            timing={k: v for k, v in timing.model_dump().items() if isinstance(v, float)},
            busy=busy, window=window, trials=trials,
        )  # fmt: skip


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: list[StepResult]) -> list[str]:
    lines = [
        "| N | etcd CPU % (all / busiest member) | etcd req/s | p99 gRPC / WAL fsync ms "
        "| p99 keepalive ms (agents) | keeper errors / fences | sentinel problems "
        "| load failovers | machine CPU % | failover median s (all) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in results:
        every = ", ".join(number(s, 2) for s in step.failover_seconds)
        lines.append(
            f"| {step.clusters} | {step.etcd_cpu_percent:.0f} / "
            f"{step.busiest_member_cpu_percent:.0f} | {step.requests_per_second:.0f} | "
            f"{number(step.grpc_p99_ms, 1)} / {number(step.wal_fsync_p99_ms, 1)} | "
            f"{number(step.keepalive_p99_ms, 1)} | {step.keeper_errors} / {step.fences} | "
            f"{step.sentinel_problems} | {step.load_failovers} | "
            f"{step.machine_cpu_percent:.0f} | {number(step.failover_median, 2)} ({every}) |"
        )
    return lines


def method(context: Context) -> str:
    timing = context.timing
    load = (
        "busy (masters' LSNs advance: every keeper publishes every interval)"
        if context.busy
        else "idle (fixed LSNs: a keeper republishes every ten intervals)"
    )
    return (
        f"`bench/many_clusters.py`, {context.date}, {context.node} ({context.cores} cores, "
        f"shared by everything): one three-member etcd {context.etcd_version} on loopback "
        "with roles/etcd's settings. N-1 load clusters, each with its own store prefix, one "
        "real rhizome-sentinel and three fake keepers (bench/fleet.py: the keeper's own lease, "
        f"watch and publisher code, no PostgreSQL), load {load}; plus one real cluster "
        "(three keepers with PostgreSQL 15, a sentinel, rhizome-proxy). Spec timing for "
        f"all: keeper_publish_interval {timing['keeper_publish_interval']:g} s, keeper lease "
        f"{timing['keeper_lease_ttl']:g} s, fence deadline {timing['fence_deadline']:g} s, "
        f"renew_interval {timing['renew_interval']:g} s. Rates, CPU and latency over a "
        f"{context.window:g} s steady window; errors over the whole step; failover: "
        f"median of {context.trials} host death(s) of the real cluster's master per N, from "
        "the fault to the first write through the proxy. Requests are gRPC calls (the JSON "
        "gateway's keepalives included, watch streams not); keepalive p99 is the agents' own "
        "round trip."
    )


def slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (intercept, slope); through the origin with a single point."""
    if len(points) == 1:
        return 0.0, points[0][1] / points[0][0]
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    gradient = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return mean_y - gradient * mean_x, gradient


def full_deployment_factor(timing: dict[str, float], busy: bool) -> float:
    """Requests of a real cluster (3 sentinels, 3 proxies) over those of a load cluster here."""
    keepers = 3 * (2 if busy else 1.1) / timing["keeper_publish_interval"]
    measured = keepers + 1 / timing["renew_interval"]
    return (keepers + (FULL_SENTINELS + FULL_PROXIES) / timing["renew_interval"]) / measured


def extrapolation(results: list[StepResult], context: Context) -> str:
    healthy = [step for step in results if not step.saturated] or results
    intercept, per_cluster = slope([(s.clusters, s.busiest_member_cpu_percent) for s in healthy])
    _, requests = slope([(s.clusters, s.requests_per_second) for s in healthy])
    heading = "### On paper: a dedicated etcd\n\n"
    if per_cluster <= 0:
        return heading + "The busiest member's CPU did not grow with N here: no estimate."
    factor = full_deployment_factor(context.timing, context.busy)
    budget = DEDICATED_CORES * 100 * DEDICATED_UTILISATION
    capacity = (budget - max(intercept, 0.0)) / per_cluster
    fit = "least squares over the unsaturated steps"
    if len(healthy) == 1:
        fit = "a single step: etcd's idle cost is counted as load, so this overstates it"
    return heading + (
        f"Measured here, each cluster costs the busiest etcd member {per_cluster:.2f} % of a "
        f"core and etcd {requests:.1f} requests/s ({fit}). "
        f"Assumptions: three dedicated members with {DEDICATED_CORES} cores each, etcd kept "
        f"below {DEDICATED_UTILISATION:.0%} of them ({budget:.0f} % of a core) for headroom "
        "(compaction, snapshots, elections, a member catching up), CPU linear in the number of "
        "clusters, disk fsync as fast as here. That gives about "
        f"**{capacity:.0f} clusters** of this load. A real cluster also runs "
        f"{FULL_SENTINELS} sentinels and about {FULL_PROXIES} proxies, each renewing a lease "
        f"every renew_interval and watching the prefix: {factor:.1f}x the requests measured "
        f"here, so about **{capacity / factor:.0f} clusters** (a lower bound for a busy fleet: "
        "a keepalive costs etcd less than a publish, though each publish then reaches five more "
        "watchers). This machine's numbers include etcd competing with the load generators "
        "for two cores, so they overstate etcd's own cost."
    )


def slowdown(results: list[StepResult]) -> str:
    """Where the real cluster's failover time went between the first and the last step."""
    measured = [step for step in results if step.failover_median is not None]
    if len(measured) < 2:
        return ""
    first, last = measured[0], measured[-1]
    assert first.failover_median is not None and last.failover_median is not None
    grown = last.failover_median - first.failover_median
    worst_latency = max(filter(None, [last.grpc_p99_ms, last.keepalive_p99_ms]), default=0.0)
    return (
        f"From N={first.clusters} to N={last.clusters} the failover median grew by "
        f"{grown:.2f} s while etcd's p99 request latency stayed at {worst_latency:.0f} ms or "
        f"less; at N={last.clusters} the machine ran at {last.machine_cpu_percent:.0f} % of "
        f"its cores, {last.load_cpu_percent:.0f} % of one core in the load generators. The "
        "extra seconds come from the real cluster's agents and PostgreSQL waiting for CPU on "
        "the shared machine rather than from etcd answering late."
    )


def advice(context: Context) -> str:
    interval = context.timing["keeper_publish_interval"]
    return (
        "### For a large fleet\n\n"
        f"`timing.keeper_publish_interval` (now {interval:g} s) sets most of the load: every "
        "keeper renews its lease and, while its cluster takes writes, publishes once per "
        "interval, and every publish wakes every watcher of the cluster. Doubling it halves "
        "the keepers' requests. Keep two renewal attempts before the fencing point "
        "(`fence_deadline` at least 2 x interval + 1 s) and `keeper_lease_ttl` at least "
        "`fence_deadline` + 0.5 s, e.g. interval 2 s, fence_deadline 5 s, keeper_lease_ttl "
        "6 s: a host-death failover waits for the lease, so it grows by the TTL's increase "
        "(about 1 s). `timing.renew_interval` does the same for sentinels and proxies. "
        "Check such a spec here with `--timing keeper_publish_interval=2,fence_deadline=5,"
        "keeper_lease_ttl=6`."
    )


def plot(results: list[StepResult], path: Path) -> None:
    clusters = [step.clusters for step in results]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].plot(clusters, [s.etcd_cpu_percent for s in results], "o-", label="etcd, 3 members")
    axes[0].plot(clusters, [s.busiest_member_cpu_percent for s in results], "s--", label="busiest")
    axes[0].set_ylabel("% of one core")
    axes[0].legend()
    for label, values in (
        ("gRPC p99", [s.grpc_p99_ms for s in results]),
        ("keepalive p99 (agents)", [s.keepalive_p99_ms for s in results]),
    ):
        axes[1].plot(clusters, [v if v is not None else float("nan") for v in values], "o-",
                     label=label)  # fmt: skip
    axes[1].set_ylabel("ms")
    axes[0].set_title("etcd CPU")
    axes[1].set_title("etcd request latency")
    axes[2].set_title("real cluster's failover")
    axes[1].legend()
    for step in results:
        measured = [s for s in step.failover_seconds if s is not None]
        axes[2].scatter([step.clusters] * len(measured), measured, color="tab:gray", alpha=0.6)
    medians = [s.failover_median for s in results]
    axes[2].plot(clusters, [m if m is not None else float("nan") for m in medians], "o-")
    axes[2].set_ylabel("host-death failover, s (dots: trials)")
    for axis in axes:
        axis.set_xlabel("clusters on one etcd (N)")
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def render(results: list[StepResult], context: Context, plot_link: str) -> str:
    lines = ["## Many clusters on one etcd", "", method(context), "", *table(results), ""]
    saturated = [f"N={step.clusters}: {step.saturated}" for step in results if step.saturated]
    if saturated:
        lines += [f"Saturated, the run stopped there: {'; '.join(saturated)}.", ""]
    if context.unmeasured:
        lines += [
            f"Not measured, the machine saturated while the load grew: {context.unmeasured}.",
            "",
        ]
    lines += [f"![many clusters]({plot_link})", "", slowdown(results), ""]
    lines += [extrapolation(results, context), ""]
    return "\n".join([*lines, advice(context)])


def publish(results: list[StepResult], context: Context, write: bool) -> None:
    """The plot and the section; docs/ only when `write` (else build/many-clusters-scratch/)."""
    if not results:
        print("no step finished: nothing to report")
        return
    directory = PLOTS if write else SCRATCH
    directory.mkdir(parents=True, exist_ok=True)
    plot(results, directory / PLOT)
    section = render(results, context, f"{PLOT_LINK}/{PLOT}")
    print(f"plot in {directory / PLOT}\n\n{section}")
    if write:
        write_section(SECTION, section)
