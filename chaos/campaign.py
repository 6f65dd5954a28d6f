"""Run a campaign: start the cluster, workloads and probe, apply each planned fault,
heal it, check convergence, then check the data. Returns everything measured."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.client import connect, query
from chaos.cluster import ChaosCluster
from chaos.faults import FaultFinding, inject, resolve_target
from chaos.operations import OperationDuringFault
from chaos.plan import Fault
from chaos.probe import Probe, ProbeSample
from chaos.workload import (
    ACCOUNTS,
    INITIAL_BALANCE,
    SCHEMA,
    BankWorkload,
    InsertWorkload,
    WorkloadRecord,
)
from tests.harness.cluster import close_quietly

CONVERGENCE_BOUND = 90.0
SETTLE_SECONDS = 2.0
OPERATION_DELAY = 1.0
WAL_SAMPLE_INSERTS = 100


@dataclass
class FaultRecord:
    fault: Fault
    node: str
    started: float
    healed: float
    converged: float | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def window(self) -> tuple[float, float]:
        """From the fault's start to the cluster's convergence (its healing when it never
        converged): what the fault's unavailability, failures and lost writes count in."""
        return self.started, self.converged or self.healed


@dataclass
class CampaignResult:
    seed: int
    mode: str
    records: list[FaultRecord]
    samples: list[ProbeSample]
    inserts: WorkloadRecord
    bank: WorkloadRecord
    lost: list[int]
    bank_total: int | None
    wal_bytes_per_insert: float
    lag_bound_bytes: int
    started: float
    finished: float
    wall_started: float
    log_directory: Path
    findings: list[str] = field(default_factory=list)


def master_connection(cluster: ChaosCluster):  # type: ignore[no-untyped-def]
    """A direct connection to the published master, once the cluster has converged."""
    if cluster.wait_converged(CONVERGENCE_BOUND):
        raise RuntimeError("the cluster did not converge: " + "; ".join(cluster.problems()))
    master = cluster.node(cluster.master_name() or "")
    return connect((master.address, master.keeper.port), cluster.password)


def final_checks(cluster: ChaosCluster,
                 acknowledged: dict[int, float]) -> tuple[list[int], int, float]:  # fmt: skip
    """Lost inserts, the bank total, and the WAL bytes one insert writes."""
    connection = master_connection(cluster)
    try:
        present = {number for (number,) in query(connection, "SELECT number FROM chaos_writes",
                                                 (), 30)}  # fmt: skip
        (total,) = query(connection, "SELECT sum(balance) FROM chaos_accounts", (), 30)[0]
        wal_bytes = wal_bytes_per_insert(connection)
    finally:
        close_quietly(connection)
    return sorted(set(acknowledged) - present), int(total), wal_bytes


def wal_bytes_per_insert(connection: Any, count: int = WAL_SAMPLE_INSERTS) -> float:
    """WAL written by one insert of the workload's shape in its own transaction (the
    workload is stopped by then), to turn lost writes into lost bytes."""
    (start,) = query(connection, "SELECT pg_current_wal_insert_lsn()")[0]
    for number in range(count):
        query(connection, "INSERT INTO chaos_wal_sample (number) VALUES (%s)", (number,))
    (written,) = query(connection, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)",
                       (start,))[0]  # fmt: skip
    return float(written) / count


def apply_fault(cluster: ChaosCluster, fault: Fault) -> FaultRecord:
    node = resolve_target(cluster, fault)
    record = FaultRecord(fault, node.name, time.monotonic(), 0.0, None)
    heal = inject(cluster, fault, node)
    operation = None
    if fault.operation_during is not None:
        operation = OperationDuringFault(cluster, fault.operation_during, node.name, record.notes)
        time.sleep(min(OPERATION_DELAY, fault.duration))
        operation.start()
    time.sleep(max(0.0, record.started + fault.duration - time.monotonic()))
    try:
        heal()
    except FaultFinding as finding:
        record.notes.append(f"FINDING: {finding}")
    record.healed = time.monotonic()
    if operation is not None:
        operation.end()
    record.problems = cluster.wait_converged(CONVERGENCE_BOUND)
    if not record.problems:
        record.converged = time.monotonic()
    if operation is not None:
        operation.verify()
    return record


def run_campaign(cluster: ChaosCluster, seed: int, faults: Sequence[Fault],
                 progress: Callable[[str], None] = print,
                 before_fault: Callable[[Fault], None] = lambda fault: None,
                 ) -> CampaignResult:  # fmt: skip
    """Everything after `cluster.start()`: schema, workloads, probe, faults, final checks.

    `before_fault` runs before each fault (a test changing the spec between faults)."""
    connection = master_connection(cluster)
    try:
        query(connection, SCHEMA, (), 30)
    finally:
        close_quietly(connection)
    targets = [(f"direct {n.name}", "direct", (n.address, n.keeper.port)) for n in cluster.nodes]
    targets += [(f"proxy {n.name}", "proxy", (n.address, 6432)) for n in cluster.nodes]
    probe = Probe(targets, cluster.password).start()
    inserts = InsertWorkload(cluster.proxy_endpoints, cluster.password)
    bank = BankWorkload(cluster.proxy_endpoints, cluster.password, seed)
    inserts.start(), bank.start()
    started, wall_started = time.monotonic(), time.time()
    records: list[FaultRecord] = []
    try:
        time.sleep(SETTLE_SECONDS)
        for fault in faults:
            before_fault(fault)
            record = apply_fault(cluster, fault)
            records.append(record)
            progress(progress_line(record, len(faults), inserts))
            if record.problems:
                progress(cluster.diagnostics(15))
            time.sleep(SETTLE_SECONDS)
    finally:
        for loop in (inserts, bank, probe):
            loop.stop()
    lost, total, wal_bytes = final_checks(cluster, inserts.acknowledged)
    return CampaignResult(seed, cluster.mode, records, list(probe.samples), inserts.record(),
                          bank.record(), lost, total, wal_bytes, cluster.lag_bound_bytes,
                          started, time.monotonic(), wall_started, cluster.directory)  # fmt: skip


def progress_line(record: FaultRecord, total: int, inserts: InsertWorkload) -> str:
    fault = record.fault
    converged = (
        f"converged {record.converged - record.healed:.1f} s after healing"
        if record.converged is not None
        else f"NOT CONVERGED: {'; '.join(record.problems)}"
    )
    notes = f" [{' | '.join(record.notes)}]" if record.notes else ""
    operation = f" + {fault.operation_during}" if fault.operation_during else ""
    return (f"[{fault.number}/{total}] {fault.kind}{operation} on {record.node} ({fault.target}) "
            f"{fault.duration:.1f} s: {converged}; {len(inserts.acknowledged)} inserts "
            f"acknowledged so far{notes}")  # fmt: skip


EXPECTED_TOTAL = ACCOUNTS * INITIAL_BALANCE
