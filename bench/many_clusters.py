"""How many rhizome clusters can one three-member etcd serve before failover slows down?

One three-member etcd 3.4 on loopback (flags as roles/etcd deploys it: heartbeat
100 ms, election timeout 1 s, 2 GiB quota, hourly periodic compaction; plus
`--metrics extensive` for request latency histograms) serves, for each N of
`--clusters`:

- N-1 load clusters, each under its own cluster name: its spec, one real
  `rhizome-sentinel` process (the program itself, one per cluster, not
  runner objects grouped: memory allows it, about 36 MiB each) and three
  fake keepers (bench/fleet.py: the keeper's own LeaseGuard/LeaseHolder,
  StoreFollower, relay_changes and KeeperPublisher; no PostgreSQL), ten
  clusters' keepers per process (`--clusters-per-process`). By
  default the fake masters are busy (their LSN advances at every
  observation), so every keeper publishes every keeper_publish_interval as a
  keeper of a cluster taking writes does; `--idle` keeps LSNs fixed (a
  keeper then republishes every ten intervals). No proxies, one sentinel per
  cluster: a real fleet adds their leases and watches (see the report).
- one real cluster (bench/rhizome_system.py: three keepers with PostgreSQL
  15, a sentinel and rhizome-proxy, all given the three members' URLs), whose
  host-death failover is measured as bench/side_by_side.py does
  (`failover_trial`: from the fault to the first write through the proxy on
  a connection opened after it).

Load clusters are added between steps, never restarted. Each step waits until
every load cluster is initialised with two standbys, lets it settle, then
measures over `--window` seconds: etcd CPU (/proc, summed over members, and the
busiest member), request rate (grpc_server_started_total without Watch
streams: the JSON gateway forwards every call to etcd's gRPC server), p99
latencies (grpc_server_handling_seconds, WAL fsync; the fake keepers' own
keepalive round trips), then `--trials` host-death failovers of the real
cluster. Store errors seen by the agents are counted over the whole step:
failed renewals and publishes and logged warnings of the fake keepers,
WARNING/ERROR lines of the load sentinels, would-be fences of fake masters,
failovers in load clusters. The run stops early once the machine saturates:
the fake keepers renew late (p99 more than a quarter interval behind), the
machine's CPU is above 95 %, or a load cluster does not become healthy.

The load generators cost what the agents cost: measured on 2 cores, a busy
load cluster takes about 1 % of a core in its fake keepers and 0.6 % in its
sentinel, so on such a machine they, not etcd, may end the run before N=200;
the report extrapolates from the steps measured. N=200 wants about 9 GiB of
memory. `--timing` sets spec timings for every cluster (e.g. to check the
report's advice for large fleets).

Rewrites the "many-clusters" section of docs/benchmarks.md and
docs/benchmarks/many-clusters.png (with `--no-report`: only
build/many-clusters-scratch/); raw results go to build/many-clusters.json.
Run with `PYTHONPATH=. .venv/bin/python bench/many_clusters.py [--clusters
10,50,200] [--trials 3] [--window 30] [--idle] [--timing NAME=SECONDS,...]
[--quick] [--no-report]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import psycopg2

from bench.many_clusters_metrics import StepResult, summarize, take_sample
from bench.many_clusters_report import Context, publish
from bench.probes import create_table
from bench.rhizome_system import RhizomeSystem
from bench.side_by_side import failover_trial
from rhizome.config import open_client
from rhizome.etcd import EtcdError, EtcdSettings, EtcdUnavailable
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.view import ClusterView
from tests.harness.agents import SentinelProcess
from tests.harness.etcd import RAFT_TIMING, EtcdCluster
from tests.harness.processes import ServerProcess

ETCD_ARGUMENTS = (
    "--metrics", "extensive", *RAFT_TIMING,
    "--quota-backend-bytes", "2147483648", "--auto-compaction-mode", "periodic",
    "--auto-compaction-retention", "1",
)  # fmt: skip
"""As roles/etcd configures members (its defaults), plus latency histograms."""
FAULT = "host death"
HEALTH_TIMEOUT = 60.0
HEALTH_TIMEOUT_PER_CLUSTER = 1.0
REPOSITORY = Path(__file__).resolve().parent.parent
BUILD = REPOSITORY / "build"
PROBLEM_MARKS = (" WARNING ", " ERROR ", "Traceback")
"""A sentinel log line with one of these reports a problem (its format: rhizome.sentinel.main)."""


def cluster_healthy(view: ClusterView) -> bool:
    """Initialised, routed to its master, two standbys, every keeper running and caught up."""
    state = view.state.document if view.state is not None else None
    if state is None or not state.initialized or state.master is None:
        return False
    if state.proxy_target.master != state.master:
        return False
    if sorted(item.role for item in state.assignments.values()) != ["master", "standby", "standby"]:
        return False
    documents = [view.keepers.get(name) for name in state.assignments]
    return all(
        stored is not None
        and stored.document.running
        and stored.document.acknowledged_state_generation == state.generation
        for stored in documents
    )


class LoadClusters:
    """The load clusters: a spec and a sentinel process each, fake keepers in groups."""

    def __init__(
        self,
        directory: Path,
        etcd_urls: list[str],
        spec: ClusterSpec,
        busy: bool,
        clusters_per_process: int,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.etcd_urls, self.spec = directory, etcd_urls, spec
        self.busy, self.clusters_per_process = busy, clusters_per_process
        self.client = open_client(EtcdSettings(endpoints=tuple(etcd_urls)), "v3")
        self.names: list[str] = []
        self.sentinels: list[SentinelProcess] = []
        self.fleets: list[tuple[ServerProcess, Path]] = []

    def grow_to(self, count: int) -> None:
        """Add load clusters until there are `count`: specs, sentinels, fake keepers."""
        new = [f"load{index:03d}" for index in range(len(self.names) + 1, count + 1)]
        for name in new:
            self._write_spec(name)
            sentinel = SentinelProcess(
                self.directory / "sentinels", f"sentinel-{name}", self.etcd_urls, name
            )
            self.sentinels.append(sentinel.start())
        for first in range(0, len(new), self.clusters_per_process):
            self._start_fleet(new[first : first + self.clusters_per_process])
        self.names += new

    def _write_spec(self, name: str) -> None:
        """Create the cluster's spec; an equal one is ours (a timed-out write retried)."""
        store = ClusterStore(self.client, name)
        if store.write_spec(self.spec, 0) is not None:
            return
        stored = store.read_spec()
        if stored is None or stored.document != self.spec:
            raise RuntimeError(f"cluster {name} has another spec already")

    def _start_fleet(self, names: list[str]) -> None:
        number = len(self.fleets) + 1
        stats = self.directory / f"fleet{number}.json"
        command = [sys.executable, "-m", "bench.fleet", "--endpoints", ",".join(self.etcd_urls)]
        command += ["--clusters", ",".join(names), "--stats", str(stats)]
        command += [] if self.busy else ["--idle"]
        paths = [str(REPOSITORY), *filter(None, [os.environ.get("PYTHONPATH")])]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        log = self.directory / f"fleet{number}.log"
        process = ServerProcess(command, log, env=environment, cwd=REPOSITORY)
        process.start()
        self.fleets.append((process, stats))

    def healthy_count(self) -> int:
        healthy = 0
        for name in self.names:
            with contextlib.suppress(EtcdError):
                healthy += cluster_healthy(ClusterStore(self.client, name).read_view())
        return healthy

    def wait_healthy(self, timeout: float) -> int:
        """Until every load cluster is healthy or `timeout`; how many are."""
        deadline = time.monotonic() + timeout
        while (healthy := self.healthy_count()) < len(self.names):
            if time.monotonic() > deadline or self.dead_processes():
                break
            time.sleep(1.0)
        return healthy

    def failovers_since(self, wall_time: float) -> int:
        """Failovers the load clusters' sentinels recorded since `wall_time` (unix time)."""
        failovers = 0
        for name in self.names:
            try:
                stored = ClusterStore(self.client, name).read_state()
            except EtcdError:
                continue
            history = stored.document.history if stored is not None else ()
            failovers += sum(1 for c in history if c.kind == "failover" and c.at >= wall_time)
        return failovers

    def sentinel_problems(self) -> int:
        """WARNING, ERROR and traceback lines in every load sentinel's log so far."""
        count = 0
        for sentinel in self.sentinels:
            text = sentinel.log_text()
            count += sum(1 for line in text.splitlines() if any(m in line for m in PROBLEM_MARKS))
        return count

    def fleet_stats(self) -> list[dict[str, Any]]:
        """The last counters every fake-keeper process wrote (bench.fleet.write_stats)."""
        found = []
        for _, path in self.fleets:
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found

    def pids(self) -> list[int]:
        processes = [process for process, _ in self.fleets]
        processes += [sentinel.process for sentinel in self.sentinels]
        return [process.pid for process in processes if process.is_running]

    def dead_processes(self) -> int:
        processes = [process for process, _ in self.fleets]
        processes += [sentinel.process for sentinel in self.sentinels]
        return sum(1 for process in processes if not process.is_running)

    def stop(self) -> None:
        """Sentinels first (no failover as the fake keepers revoke their leases), in parallel."""
        for group in ([s.process for s in self.sentinels], [p for p, _ in self.fleets]):
            for process in group:
                process.send_signal(signal.SIGTERM)
            for process in group:
                process.stop()


def failover_trials(
    clusters: int, system: RhizomeSystem, trials: int
) -> tuple[list[float | None], str | None]:
    """Host deaths of the real cluster's master: seconds each (None: no recovery), and why
    the real cluster could not be measured further (None: it recovered every time)."""
    seconds: list[float | None] = []
    for round_number in range(1, trials + 1):
        try:
            trial = failover_trial(system, FAULT, round_number)
        except (AssertionError, psycopg2.Error, TimeoutError) as error:
            print(f"=== real cluster diagnostics ===\n{system.diagnostics()}", flush=True)
            return [*seconds, None], f"the real cluster did not recover ({error})"
        seconds.append(trial.seconds)
        shown = f"{trial.seconds:.2f} s" if trial.seconds is not None else "NO RECOVERY"
        print(f"N={clusters} failover {round_number}/{trials}: {shown}", flush=True)
    return seconds, None


def run_step(
    clusters: int,
    load: LoadClusters,
    system: RhizomeSystem,
    etcd: EtcdCluster,
    arguments: argparse.Namespace,
) -> StepResult:
    """Grow the load to clusters-1, measure a steady window, then the real cluster's failovers."""
    began = time.monotonic()
    load.grow_to(clusters - 1)
    healthy = load.wait_healthy(HEALTH_TIMEOUT + HEALTH_TIMEOUT_PER_CLUSTER * (clusters - 1))
    print(
        f"N={clusters}: {healthy}/{clusters - 1} load clusters healthy after "
        f"{time.monotonic() - began:.0f} s",
        flush=True,
    )
    time.sleep(arguments.settle)
    first = take_sample(etcd, load)
    time.sleep(arguments.window)
    second = take_sample(etcd, load)
    seconds, lost = failover_trials(clusters, system, arguments.trials)
    third = take_sample(etcd, load)
    result = summarize(
        clusters, healthy, (first, second, third), load.failovers_since(first.wall), seconds,
        arguments.timing.keeper_publish_interval,
    )  # fmt: skip
    if lost is not None:
        result.saturated = "; ".join(filter(None, [result.saturated, lost]))
    return result


def measure(arguments: argparse.Namespace, results: list[StepResult]) -> str | None:
    """Fill `results` step by step (in place: a failed run keeps the steps it finished).
    A step during which etcd stops answering is the machine's limit: returns which."""
    with tempfile.TemporaryDirectory(prefix="rhizome-bench-many-clusters-") as name:
        directory = Path(name)
        etcd = EtcdCluster(directory / "etcd", 3, extra_arguments=ETCD_ARGUMENTS)
        load: LoadClusters | None = None
        system: RhizomeSystem | None = None
        try:
            etcd.start()
            system = RhizomeSystem(
                directory / "rhizome", etcd[0], spec=arguments.spec, etcd_urls=etcd.client_urls
            )
            system.start()
            create_table(system.endpoint)
            load = LoadClusters(
                directory / "load", etcd.client_urls, parse_spec(arguments.spec),
                busy=not arguments.idle, clusters_per_process=arguments.clusters_per_process,
            )  # fmt: skip
            for clusters in arguments.clusters:
                try:
                    step = run_step(clusters, load, system, etcd, arguments)
                except EtcdUnavailable as error:
                    print(f"stopping at N={clusters}: {error}", flush=True)
                    return f"N={clusters}: no etcd member answered within the request timeout"
                results.append(step)
                print(step.describe(), flush=True)
                if step.saturated:
                    print(f"stopping after N={clusters}: {step.saturated}", flush=True)
                    break
        except BaseException:
            if system is not None:
                print(f"=== real cluster diagnostics ===\n{system.diagnostics()}")
            raise
        finally:
            if system is not None:
                system.stop()
            if load is not None:
                load.stop()
            etcd.stop()
    return None


def timing_overrides(text: str) -> dict[str, float]:
    """'keeper_publish_interval=2,keeper_lease_ttl=6' -> {name: seconds}."""
    overrides: dict[str, float] = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, _, value = part.partition("=")
        overrides[name.strip()] = float(value)
    return overrides


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--clusters",
        type=lambda text: sorted({int(part) for part in text.split(",")}),
        default=[10, 50, 200],
        help="numbers of clusters N (N-1 load clusters + the real one), comma-separated",
    )
    parser.add_argument("--trials", type=int, default=3, help="host-death failovers per N")
    parser.add_argument("--window", type=float, default=30.0, help="steady measurement, s")
    parser.add_argument("--settle", type=float, default=10.0, help="wait before measuring, s")
    parser.add_argument("--idle", action="store_true", help="load masters write nothing")
    parser.add_argument(
        "--clusters-per-process", type=int, default=10, help="fake keepers' grouping"
    )
    parser.add_argument(
        "--timing",
        type=timing_overrides,
        default={},
        help="spec timing for every cluster, e.g. keeper_publish_interval=2,keeper_lease_ttl=6",
    )
    parser.add_argument("--quick", action="store_true", help="N=2, 1 trial, 10 s window")
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="leave docs/ alone: write build/many-clusters-scratch/",
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.clusters, arguments.trials, arguments.window, arguments.settle = [2], 1, 10.0, 3.0
    if min(arguments.clusters) < 1:
        parser.error("--clusters: every N must be at least 1 (the real cluster)")
    arguments.spec = {"timing": arguments.timing} if arguments.timing else {}
    try:
        arguments.timing = parse_spec(arguments.spec).timing  # the fields named, validated
    except ValueError as error:
        parser.error(f"--timing: {error}")
    return arguments


def main() -> None:
    arguments = parse_arguments()
    context = Context.now(arguments.timing, not arguments.idle, arguments.window, arguments.trials)
    results: list[StepResult] = []
    scratch = BUILD / "many-clusters-scratch"
    raw = (scratch / "results.json") if arguments.no_report else BUILD / "many-clusters.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    try:
        context = replace(context, unmeasured=measure(arguments, results))
    finally:
        data: dict[str, Any] = {"context": asdict(context), "steps": [asdict(r) for r in results]}
        raw.write_text(json.dumps(data, indent=1))
        print(f"raw results in {raw}")
    publish(results, context, write=not arguments.no_report)


if __name__ == "__main__":
    main()
