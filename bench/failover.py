"""Failover time on loopback: host death, PostgreSQL crash and freeze of the master.

One cluster (etcd, three keepers, one sentinel, default spec) serves every
trial; the fault types are interleaved. A writer inserts a numbered row every
10 ms into the master published in `state`; a trial measures the time from
the fault to the first insert acknowledged after it by another master, then
counts the acknowledged rows this fault lost (asynchronous replication), then lets
the old master rejoin before the next trial. Rewrites the "failover" section
of docs/benchmarks.md.

Run with `make bench`, or `PYTHONPATH=. .venv/bin/python bench/failover.py --trials 5`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.report import write_section
from rhizome.spec import ClusterSpec
from tests.harness.cluster import LocalCluster, Writer
from tests.harness.etcd import start_etcd
from tests.harness.keeper import KeeperProcess

FAULT_TIMEOUT = 60.0
REJOIN_TIMEOUT = 120.0


def host_death(keeper: KeeperProcess) -> Callable[[], None]:
    keeper.kill()
    return keeper.start


def postgres_crash(keeper: KeeperProcess) -> Callable[[], None]:
    keeper.crash_postgres()
    return lambda: None


def freeze(keeper: KeeperProcess) -> Callable[[], None]:
    keeper.freeze()
    return keeper.thaw


FAULTS: dict[str, Callable[[KeeperProcess], Callable[[], None]]] = {
    "host death": host_death,
    "PostgreSQL crash": postgres_crash,
    "freeze": freeze,
}


def missing_writes(cluster: LocalCluster, acknowledged: list[int]) -> set[int]:
    """Acknowledged numbers that the current master does not have."""
    master = cluster.keepers[cluster.wait_for_master(FAULT_TIMEOUT)]
    present = {number for (number,) in master.execute("SELECT number FROM writes")}
    return set(acknowledged) - present


def run_trial(
    cluster: LocalCluster, writer: Writer, fault: str, lost_before: set[int]
) -> tuple[float, set[int]]:
    """Seconds from the fault to the first write on a new master, and all writes lost."""
    master = cluster.wait_for_master(REJOIN_TIMEOUT)
    cluster.wait_for_streaming(len(cluster.keepers) - 1, REJOIN_TIMEOUT)
    time.sleep(1.0)  # steady writes before the fault
    restore = FAULTS[fault](cluster.keepers[master])
    fault_at = time.monotonic()
    try:
        seconds = writer.first_success_after(fault_at, FAULT_TIMEOUT, other_than=master)
    finally:
        restore()
    return seconds, lost_before | missing_writes(cluster, list(writer.acknowledged))


def measure(trials: int) -> dict[str, list[tuple[float, int]]]:
    results: dict[str, list[tuple[float, int]]] = {fault: [] for fault in FAULTS}
    with tempfile.TemporaryDirectory(prefix="rhizome-bench-failover-") as directory:
        etcd = start_etcd(Path(directory), "etcd", tls=False, client_cert_auth=False, auth=False)
        cluster = LocalCluster(Path(directory), etcd)
        try:
            cluster.start()
            writer = Writer(cluster).start()
            lost_so_far: set[int] = set()
            for trial in range(1, trials + 1):
                for fault in FAULTS:
                    seconds, lost_now = run_trial(cluster, writer, fault, lost_so_far)
                    lost = len(lost_now - lost_so_far)
                    lost_so_far = lost_now
                    results[fault].append((seconds, lost))
                    print(f"trial {trial}/{trials} {fault}: {seconds:.2f} s, {lost} writes lost")
            writer.stop()
        finally:
            cluster.stop()
            etcd.stop()
    return results


def render(results: dict[str, list[tuple[float, int]]], trials: int) -> str:
    timing = ClusterSpec().timing
    lines = [
        "## Failover",
        "",
        f"`bench/failover.py`, {time.strftime('%Y-%m-%d')}, {platform.node()}: one cluster on "
        "loopback (etcd 3.4, three keepers with PostgreSQL 15, one sentinel), default spec "
        f"(keeper lease {timing.keeper_lease_ttl:g} s, fence deadline "
        f"{timing.fence_deadline:g} s, failover delay {timing.failover_delay:g} s, "
        f"master recovery grace {timing.master_recovery_grace:g} s, asynchronous replication). "
        f"{trials} trials per fault, interleaved. Time from the fault to the first insert "
        "acknowledged by the new master (a writer inserts every 10 ms into the master "
        "published in `state`); lost = acknowledged inserts the fault made disappear "
        "(asynchronous replication: the last commits of the old master). A PostgreSQL "
        "crash kills every PostgreSQL process of the master at once; the keeper lives on.",
        "",
        "| fault | trials | median s | max s | all s | lost writes (total) |",
        "|---|---|---|---|---|---|",
    ]
    for fault, samples in results.items():
        seconds = [sample[0] for sample in samples]
        every = ", ".join(f"{value:.2f}" for value in seconds)
        lost = sum(sample[1] for sample in samples)
        lines.append(
            f"| {fault} | {len(seconds)} | {statistics.median(seconds):.2f} | "
            f"{max(seconds):.2f} | {every} | {lost} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per fault type")
    arguments = parser.parse_args()
    results = measure(arguments.trials)
    section = render(results, arguments.trials)
    print(section)
    write_section("failover", section)


if __name__ == "__main__":
    main()
