"""Load clusters for bench/many_clusters.py: fake keepers on the agents' own store code.

A load cluster has its own cluster name (its own store prefix), a spec, one
real `rhizome-sentinel` process and three fake keepers. A fake keeper runs
no PostgreSQL but everything a keeper does with the store, through the
keeper's own classes: a `StoreFollower` watching the cluster prefix,
`inputs.relay_changes` waking its loop on relevant changes, a `LeaseGuard`
renewing a `LeaseHolder` lease every keeper_publish_interval (and calling
its fence callback at the keeper's fencing point), and a `KeeperPublisher`
publishing a `KeeperInfo` by compare-and-swap, when it changed or every ten
intervals, exactly as `Keeper._publish` does. The document claims what a
keeper that follows its assignment would observe (`fake_instance`): a
running, healthy primary or standby, the state's generation acknowledged,
LSNs that advance on a busy master and that standbys copy from their
upstream, a new timeline on promotion. So the sentinel initialises the
cluster, assigns standbys and, should a lease expire, fails over as usual.

`python -m bench.fleet` runs the fake keepers of several clusters as threads
of one process and writes their counters to a JSON file every second
(`FleetStats`); bench/many_clusters.py's `LoadClusters` writes the specs and
starts the sentinels and these processes. A fake master does not stop on a
fence: `fences` counts how often a real one would have.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import secrets
import signal
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rhizome import clock
from rhizome.config import open_client
from rhizome.etcd import EtcdError, EtcdSettings
from rhizome.etcd.client import LEASE_NOT_FOUND
from rhizome.etcd.interface import StoreClient
from rhizome.keeper import inputs
from rhizome.keeper.identity import KeeperPublisher
from rhizome.keeper.lease import LeaseGuard
from rhizome.lease import LeaseHolder
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import KeeperInfo
from rhizome.store.follower import StoreFollower
from rhizome.store.view import ClusterView
from tests.harness.ports import LOOPBACK

log = logging.getLogger("bench.fleet")

KEEPERS_PER_CLUSTER = 3
WAL_PER_PASS = 64 * 1024
"""Bytes a busy fake master writes between two observations (one keeper_publish_interval)."""
FIRST_LSN = 0x3000000
POSTGRES_VERSION = 150010
STATS_INTERVAL = 1.0
START_STAGGER = 0.02
"""Seconds between the starts of two fake keepers of one process (no thundering herd)."""
LATENCY_BOUNDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, math.inf)
"""Upper bounds (seconds) of the histograms' buckets, as Prometheus' `le`."""

# -- histograms ----------------------------------------------------------------------------------


def quantile(bounds: Sequence[float], counts: Sequence[float], fraction: float) -> float | None:
    """Prometheus' histogram_quantile over per-bucket (not cumulative) counts; None if empty.

    Linear within a bucket; the last finite bound when the quantile is in the +Inf bucket.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen = fraction * total, 0.0
    for index, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        if count > 0 and seen + count >= rank:
            lower = bounds[index - 1] if index > 0 else 0.0
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
    return bounds[-2] if len(bounds) > 1 else None


class FleetStats:
    """Counters and latency histograms of every fake keeper of a process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        names = ("renewal", "renewal_lateness", "publish")
        self.histograms = {name: [0] * len(LATENCY_BOUNDS) for name in names}

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[name] += amount

    def observe(self, histogram: str, seconds: float) -> None:
        index = next(i for i, bound in enumerate(LATENCY_BOUNDS) if seconds <= bound)
        with self._lock:
            self.histograms[histogram][index] += 1

    def warned(self, logger: str) -> None:
        with self._lock:
            self.warnings[logger] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counters": dict(self.counters),
                "warnings": dict(self.warnings),
                "histograms": {name: list(counts) for name, counts in self.histograms.items()},
            }


class WarningCounter(logging.Handler):
    """Counts WARNING and worse records per logger: store errors the agents' code logs."""

    def __init__(self, stats: FleetStats) -> None:
        super().__init__(logging.WARNING)
        self.stats = stats

    def emit(self, record: logging.LogRecord) -> None:
        self.stats.warned(record.name)


# -- what a fake keeper reports (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class FakeInstance:
    """The PostgreSQL a fake keeper pretends to run."""

    role: Literal["primary", "standby"] | None = None  # None: not running
    has_data: bool = False
    timeline: int = 1
    lsn: int = FIRST_LSN
    acknowledged_generation: int = 0


def fake_instance(name: str, current: FakeInstance, view: ClusterView, busy: bool) -> FakeInstance:
    """What a keeper that converged at once to its assignment in `view` would run now."""
    state = view.state.document if view.state is not None else None
    assignment = state.assignment_of(name) if state is not None else None
    generation = state.generation if state is not None else 0
    if assignment is not None and assignment.role == "master":
        promoted = current.role == "standby"
        return FakeInstance(
            role="primary",
            has_data=True,
            timeline=current.timeline + 1 if promoted else current.timeline,
            lsn=current.lsn + (WAL_PER_PASS if busy else 0),
            acknowledged_generation=generation,
        )
    if assignment is not None and assignment.role == "standby" and assignment.follow:
        stored = view.keepers.get(assignment.follow)
        upstream = stored.document if stored is not None else None
        if upstream is not None and upstream.running and upstream.flush_lsn is not None:
            timeline = upstream.timeline or current.timeline
            return FakeInstance("standby", True, timeline, upstream.flush_lsn, generation)
        return replace(current, role="standby", has_data=True, acknowledged_generation=generation)
    return replace(current, role=None, acknowledged_generation=generation)


def system_identifier(cluster: str) -> str:
    """A fixed, plausible database system identifier per cluster."""
    return str(7_000_000_000_000_000_000 + zlib.crc32(cluster.encode()))


def fake_report(
    name: str, port: int, cluster: str, instance: FakeInstance, view: ClusterView, own_id: str
) -> KeeperInfo:
    """The KeeperInfo of `instance` (fields as rhizome.keeper.report.keeper_info sets them)."""
    running, primary = instance.role is not None, instance.role == "primary"
    state = view.state.document if view.state is not None else None
    streaming: tuple[str, ...] = ()
    synchronous: tuple[str, ...] = ()
    if primary and state is not None:
        streaming = tuple(
            other for other, assignment in sorted(state.assignments.items())
            if assignment.role == "standby" and assignment.follow == name
            and other in view.keepers and view.keepers[other].document.running
        )  # fmt: skip
        synchronous = tuple(state.synchronous_standbys.requested)
    lsn = instance.lsn if instance.has_data else None
    return KeeperInfo(
        name=name, host=LOOPBACK, port=port, observed_at=time.time(), running=running,
        role=instance.role or "unknown", healthy=running,
        timeline=instance.timeline if instance.has_data else None,
        system_identifier=system_identifier(cluster) if instance.has_data else None,
        postgres_version=POSTGRES_VERSION if running else None,
        write_lsn=lsn if primary else None, flush_lsn=lsn if primary or not running else None,
        receive_lsn=lsn if instance.role == "standby" else None,
        replay_lsn=lsn if instance.role == "standby" else None,
        lag_bytes=0 if instance.role == "standby" else None,
        synchronous_standby_names=synchronous, streaming_standbys=streaming,
        synchronous_streaming=tuple(n for n in synchronous if n in streaming) if primary else None,
        acknowledged_state_generation=instance.acknowledged_generation,
        fenced=not primary, instance_id=own_id,
    )  # fmt: skip


# -- a fake keeper -------------------------------------------------------------------------------


class CountingLeaseHolder(LeaseHolder):
    """The agents' LeaseHolder, timing each renewal and the gap since the one before."""

    def __init__(self, client: StoreClient, ttl: float, stats: FleetStats, interval: float) -> None:
        super().__init__(client, ttl)
        self.stats = stats
        self.interval = interval
        self.last_started: float | None = None

    def renew(self, within: float | None = None) -> bool:
        started = clock.monotonic()
        renewed = super().renew(within)
        self.stats.observe("renewal", clock.monotonic() - started)
        if self.last_started is not None:
            lateness = max(0.0, started - self.last_started - self.interval)
            self.stats.observe("renewal_lateness", lateness)
        self.last_started = started
        self.stats.count("renewals" if renewed else "renewal_failures")
        if self.granted_new:
            self.stats.count("lease_grants")
        return renewed


class FakeKeeper:
    """One keeper's store traffic, from the keeper's own classes; `run()` in a thread."""

    def __init__(
        self, cluster: str, index: int, settings: EtcdSettings, stats: FleetStats, busy: bool
    ) -> None:
        self.cluster, self.name, self.port = cluster, f"keeper{index}", 5432 + index
        self.store = ClusterStore(open_client(settings, "v3"), cluster)
        self.follower = StoreFollower(self.store)
        self.publisher = KeeperPublisher(self.store, self.name, secrets.token_hex(16))
        self.stats, self.busy = stats, busy
        self.stopping, self.wake = threading.Event(), threading.Event()
        self.lease: LeaseGuard | None = None
        self.instance = FakeInstance()
        self.spec = ClusterSpec()
        self.next_observation = 0.0
        self.fenced_renewal: float | None = None
        self.thread = threading.Thread(target=self.run, name=f"{cluster}/{self.name}", daemon=True)

    def run(self) -> None:
        """Until `stop()`; an unexpected error is logged and counted as a crash."""
        try:
            self.follower.start()
            if self._start_lease() and self.lease is not None:
                threading.Thread(
                    target=inputs.relay_changes, name="watch-relay", daemon=True,
                    args=(self.name, self.follower, self.stopping, self.wake,
                          self.lease.note_own_document),
                ).start()  # fmt: skip
                while not self.stopping.is_set():
                    self.wake.wait(self._pass())
                    self.wake.clear()
        except Exception:
            self.stats.count("crashes")
            log.exception("fake keeper %s/%s crashed", self.cluster, self.name)
        finally:
            if self.lease is not None:
                self.lease.stop(revoke=True)
            self.follower.stop()

    def _start_lease(self) -> bool:
        """As Keeper._start_lease: wait for the store, then hold a lease of the spec's TTL."""
        while not self.follower.synchronized:
            if self.stopping.wait(0.5):
                return False
        view = self.follower.view()
        self.spec = view.spec.document if view.spec is not None else ClusterSpec()
        timing = self.spec.timing
        interval = timing.keeper_publish_interval
        holder = CountingLeaseHolder(
            self.store.client, timing.keeper_lease_ttl, self.stats, interval
        )
        self.lease = LeaseGuard(
            holder, interval, timing.fence_deadline, self._fence, self._new_lease
        )
        self.lease.start()
        while not self.lease.wait_for_lease(0.5):
            if self.stopping.is_set():
                return False
        return True

    def _pass(self) -> float:
        """Observe (pretend), publish as Keeper._publish does; the pause before the next."""
        assert self.lease is not None
        view = self.follower.view()
        if view.spec is not None:
            self.spec = view.spec.document
        self.instance = fake_instance(self.name, self.instance, view, self.busy)
        info = fake_report(self.name, self.port, self.cluster, self.instance, view,
                           self.publisher.own_instance)  # fmt: skip
        interval = self.spec.timing.keeper_publish_interval
        lease_id = self.lease.lease_id
        if lease_id is not None:
            started = clock.monotonic()
            try:
                stored = self.name in view.keepers
                if self.publisher.publish_if_due(info, lease_id, stored, interval):
                    self.stats.observe("publish", clock.monotonic() - started)
                    self.stats.count("publishes")
            except EtcdError as error:
                self.stats.count("publish_errors")
                log.warning("cannot publish the keeper document: %s", error)
                if LEASE_NOT_FOUND in str(error):
                    self.lease.check_now()
        now = clock.monotonic()  # Keeper._idle_pause
        if now >= self.next_observation:
            self.next_observation = now + interval
        return max(0.01, self.next_observation - now)

    def _new_lease(self) -> None:
        self.publisher.republish = True
        self.wake.set()

    def _fence(self, seconds_since_renewal: float, kill_at: float) -> None:
        """A real master would stop PostgreSQL now: count it (once per missed renewal)."""
        if self.instance.role != "primary" or self.lease is None:
            return
        renewed_at = self.lease.renewed_at()
        if renewed_at != self.fenced_renewal:
            self.fenced_renewal = renewed_at
            self.stats.count("fences")
            log.warning("%s/%s: a real master would fence now (%.2f s since the renewal)",
                        self.cluster, self.name, seconds_since_renewal)  # fmt: skip

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()


# -- the load-generator process --------------------------------------------------------------


def write_stats(path: Path, stats: FleetStats, keepers: int) -> None:
    """Atomically replace `path` with the counters (the parent reads it at any time)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({**stats.snapshot(), "keepers": keepers, "at": time.time()}))
    temporary.replace(path)


def run_fleet(arguments: argparse.Namespace) -> None:
    stats = FleetStats()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger().addHandler(WarningCounter(stats))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda number, frame: stop.set())
    settings = EtcdSettings(endpoints=tuple(arguments.endpoints.split(",")))
    parent = os.getppid()
    keepers = [
        FakeKeeper(cluster, index, settings, stats, busy=not arguments.idle)
        for cluster in arguments.clusters.split(",")
        for index in range(1, KEEPERS_PER_CLUSTER + 1)
    ]
    for keeper in keepers:
        keeper.thread.start()
        time.sleep(START_STAGGER)
    while not stop.wait(STATS_INTERVAL) and os.getppid() == parent:  # ends with its parent
        write_stats(arguments.stats, stats, len(keepers))
    for keeper in keepers:
        keeper.stop()
    for keeper in keepers:
        keeper.thread.join(timeout=15)
    write_stats(arguments.stats, stats, len(keepers))


def main() -> None:
    parser = argparse.ArgumentParser(description="fake keepers of several load clusters")
    parser.add_argument("--endpoints", required=True, help="etcd client URLs, comma-separated")
    parser.add_argument("--clusters", required=True, help="cluster names, comma-separated")
    parser.add_argument("--stats", type=Path, required=True, help="JSON counters, rewritten")
    parser.add_argument("--idle", action="store_true", help="masters write nothing (fixed LSNs)")
    run_fleet(parser.parse_args())


if __name__ == "__main__":
    main()
