"""Failover time on loopback: host death, PostgreSQL crash and freeze of the master.

One cluster (etcd, three keepers, one sentinel, default spec) serves every
trial; the fault types are interleaved. A writer inserts a numbered row every
10 ms into the master published in `state`; a trial measures the time from
the fault to the first acknowledged insert after it (necessarily on the new
master), then counts acknowledged rows missing on the new master, then lets
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
    keeper.kill_postgres()
    return lambda: None


def freeze(keeper: KeeperProcess) -> Callable[[], None]:
    keeper.freeze()
    return keeper.thaw


FAULTS: dict[str, Callable[[KeeperProcess], Callable[[], None]]] = {
    "host death": host_death,
    "PostgreSQL crash": postgres_crash,
    "freeze": freeze,
}


def lost_writes(cluster: LocalCluster, acknowledged: list[int]) -> int:
    master = cluster.keepers[cluster.wait_for_master(FAULT_TIMEOUT)]
    present = {number for (number,) in master.execute("SELECT number FROM writes")}
    return len(set(acknowledged) - present)


def run_trial(cluster: LocalCluster, writer: Writer, fault: str) -> tuple[float, int]:
    """Seconds from the fault to the first write on the new master, and writes lost."""
    master = cluster.wait_for_master(REJOIN_TIMEOUT)
    cluster.wait_for_streaming(len(cluster.keepers) - 1, REJOIN_TIMEOUT)
    time.sleep(1.0)  # steady writes before the fault
    restore = FAULTS[fault](cluster.keepers[master])
    fault_at = time.monotonic()
    try:
        seconds = writer.first_success_after(fault_at, FAULT_TIMEOUT)
    finally:
        restore()
    return seconds, lost_writes(cluster, list(writer.acknowledged))


def measure(trials: int) -> dict[str, list[tuple[float, int]]]:
    results: dict[str, list[tuple[float, int]]] = {fault: [] for fault in FAULTS}
    with tempfile.TemporaryDirectory(prefix="rhizome-bench-failover-") as directory:
        etcd = start_etcd(Path(directory), "etcd", tls=False, client_cert_auth=False, auth=False)
        cluster = LocalCluster(Path(directory), etcd)
        try:
            cluster.start()
            writer = Writer(cluster).start()
            for trial in range(1, trials + 1):
                for fault in FAULTS:
                    seconds, lost = run_trial(cluster, writer, fault)
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
        "published in `state`); lost = acknowledged inserts missing on the new master.",
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
