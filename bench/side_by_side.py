"""Failover, switchover and agent cost of rhizome and Patroni, side by side, in one run.

One etcd 3.4 on loopback serves both systems, which run at the same time on
the same PostgreSQL 15 binaries: rhizome (three keepers, one sentinel,
rhizome-proxy; default spec) and Patroni (three nodes, documented defaults,
HAProxy with the recommended health check). Trials are interleaved: for
every round and fault type, one trial of each system, the order alternating
between rounds. Clients write every 10 ms through each system's proxy.

- failover: host death (agent and PostgreSQL killed together), PostgreSQL
  crash (every PostgreSQL process killed, the agent lives on) and freeze
  (SIGSTOP of agent and PostgreSQL) of the primary's node. Time from the fault
  to the first write acknowledged on a connection opened after it; writes lost.
- switchover: `rhizomectl switchover --wait` / Patroni's POST /switchover with
  a session client and a new-connection-per-transaction client: longest write
  pause, failed connections and transactions, writes lost.
- agent cost: CPU and RSS of every agent process while both systems idle.

Rewrites the "side-by-side" section of docs/benchmarks.md and the PNG plots in
docs/benchmarks/. Run with
`PYTHONPATH=. .venv/bin/python bench/side_by_side.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from bench.patroni_cluster import PatroniCluster, ensure_patroni
from bench.probes import (
    PATIENT_CONNECT_DEADLINE,
    Endpoint,
    WritingClient,
    create_table,
    error_counts,
    failures,
    longest_pause,
    recovery_seconds,
)
from bench.rhizome_system import RhizomeSystem
from bench.trials import (
    FAULT_TIMEOUT,
    FAULTS,
    AgentCost,
    FailoverTrial,
    Results,
    SwitchoverClient,
    SwitchoverTrial,
    results_from_json,
)
from tests.harness.cluster import wait_for
from tests.harness.etcd import start_etcd

STEADY_WRITES = 1.0
AFTER_SWITCHOVER = 2.0
BUILD = Path(__file__).resolve().parent.parent / "build"
RAW_RESULTS = BUILD / "side-by-side.json"
SCRATCH_RAW_RESULTS = BUILD / "side-by-side-scratch" / "results.json"  # with --no-report
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class System(Protocol):
    name: str

    @property
    def endpoint(self) -> Endpoint: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def wait_healthy(self) -> str: ...
    def switchover(self) -> None: ...
    def agent_processes(self) -> dict[str, list[int]]: ...
    def diagnostics(self) -> str: ...


# -- failover ------------------------------------------------------------------------------


def failover_trial(system: System, fault: str, round_number: int) -> FailoverTrial:
    primary = system.wait_healthy()
    client = WritingClient(system.endpoint, f"failover-{fault}-{round_number}").start()
    restore = None
    try:
        time.sleep(STEADY_WRITES)
        fault_at = time.monotonic()
        restore = getattr(system, FAULTS[fault])(primary)
        try:
            found = wait_for(
                lambda: recovery_seconds(client.attempts, fault_at), FAULT_TIMEOUT, "a write"
            )
            seconds: float | None = found
        except AssertionError:
            seconds = None
    finally:
        client.stop()
        if restore is not None:
            restore()
    system.wait_healthy()
    return FailoverTrial(system.name, fault, round_number, seconds, client.lost_writes())


# -- switchover ------------------------------------------------------------------------------


def switchover_trial(system: System, round_number: int) -> SwitchoverTrial:
    system.wait_healthy()
    endpoint, deadline = system.endpoint, PATIENT_CONNECT_DEADLINE
    clients = {
        "session": WritingClient(
            endpoint, f"switchover-session-{round_number}", connect_deadline=deadline
        ),
        "new connection per transaction": WritingClient(
            endpoint, f"switchover-per-transaction-{round_number}", True, connect_deadline=deadline
        ),
    }
    began = time.monotonic()
    for client in clients.values():
        client.start()
    try:
        time.sleep(2 * STEADY_WRITES)
        requested_at = time.monotonic()
        system.switchover()
        operation_seconds = time.monotonic() - requested_at
        system.wait_healthy()
        time.sleep(AFTER_SWITCHOVER)
        ended = time.monotonic()
    finally:
        for client in clients.values():
            client.stop()
    summaries = {}
    for kind, client in clients.items():
        failed_connections, failed_transactions = failures(client.attempts, began)
        summaries[kind] = SwitchoverClient(
            pause=longest_pause(client.attempts, requested_at, ended),
            failed_connections=failed_connections,
            failed_transactions=failed_transactions,
            lost=client.lost_writes(),
            errors=error_counts(client.attempts),
            timeline=[(a.finished - requested_at, a.acknowledged) for a in client.attempts],
        )
    return SwitchoverTrial(system.name, round_number, operation_seconds, summaries)


# -- agent cost ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_agent_cost(systems: list[System], seconds: float) -> list[AgentCost]:
    """CPU and RSS of every agent process of every system, all idle at the same time."""
    components = [
        (system.name, component, pids)
        for system in systems
        for component, pids in system.agent_processes().items()
    ]
    before = {pid: cpu_seconds(pid) for _, _, pids in components for pid in pids}
    time.sleep(seconds)
    return [
        AgentCost(
            system=name,
            component=component,
            processes=len(pids),
            cpu_percent=sum(cpu_seconds(pid) - before[pid] for pid in pids) / seconds * 100,
            rss_mib=sum(rss_mib(pid) for pid in pids),
        )
        for name, component, pids in components
    ]


# -- the run ------------------------------------------------------------------------------------


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def run_rounds(systems: list[System], arguments: argparse.Namespace, results: Results) -> None:
    for round_number in range(1, arguments.trials + 1):
        order = systems if round_number % 2 else systems[::-1]
        for fault in arguments.faults:
            for system in order:
                trial = failover_trial(system, fault, round_number)
                results.failovers.append(trial)
                shown = f"{trial.seconds:.2f} s" if trial.seconds is not None else "NO RECOVERY"
                print(
                    f"failover round {round_number}/{arguments.trials} {fault:16} "
                    f"{system.name:8} {shown}, {trial.lost} writes lost",
                    flush=True,
                )
    for round_number in range(1, arguments.switchovers + 1):
        order = systems if round_number % 2 else systems[::-1]
        for system in order:
            switchover = switchover_trial(system, round_number)
            results.switchovers.append(switchover)
            text = ", ".join(
                f"{kind}: pause {client.pause:.2f} s, {client.failed_connections} failed "
                f"connects, {client.failed_transactions} failed transactions, {client.lost} lost"
                for kind, client in switchover.clients.items()
            )
            errors = {kind: c.errors for kind, c in switchover.clients.items() if c.errors}
            print(
                f"switchover round {round_number}/{arguments.switchovers} {system.name:8} {text}"
                + (f"; errors: {errors}" if errors else ""),
                flush=True,
            )


def measure(arguments: argparse.Namespace, results: Results) -> None:
    """Fill `results` (in place: a failed run keeps what it measured until then)."""
    ensure_patroni()
    results.started, results.load_before = time.strftime("%Y-%m-%d %H:%M"), load_average()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rhizome-bench-side-by-side-") as name:
        directory = Path(name)
        etcd = start_etcd(directory, "etcd", tls=False, client_cert_auth=False, auth=False)
        systems: list[System] = []
        try:
            systems.append(RhizomeSystem(directory / "rhizome", etcd))
            systems.append(PatroniCluster(directory / "patroni", etcd))
            for system in systems:
                system.start()
                create_table(system.endpoint)
            print(f"both systems up after {time.monotonic() - began:.0f} s", flush=True)
            if arguments.cost_seconds > 0:
                time.sleep(5)  # let start-up work settle before measuring idle cost
                results.costs = measure_agent_cost(systems, arguments.cost_seconds)
                results.cost_seconds = arguments.cost_seconds
            for cost in results.costs:
                print(
                    f"agent cost {cost.system:8} {cost.component:14} {cost.cpu_percent:5.2f} % CPU"
                    f" {cost.rss_mib:6.1f} MiB RSS ({cost.processes} processes)",
                    flush=True,
                )
            run_rounds(systems, arguments, results)
        except BaseException:
            for system in systems:
                print(f"=== {system.name} diagnostics ===\n{system.diagnostics()}")
            raise
        finally:
            for system in systems:
                system.stop()
            etcd.stop()
            results.load_after = load_average()
            results.wall_seconds = time.monotonic() - began


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="failover trials per fault/system")
    parser.add_argument("--switchovers", type=int, default=10, help="switchovers per system")
    parser.add_argument("--cost-seconds", type=float, default=60.0, help="idle window, s (0: skip)")
    parser.add_argument(
        "--faults",
        type=lambda text: [part.strip() for part in text.split(",")],
        default=list(FAULTS),
        help=f"comma-separated subset of: {', '.join(FAULTS)}",
    )
    parser.add_argument("--quick", action="store_true", help="1 trial each, 10 s of idle cost")
    parser.add_argument(
        "--from-results",
        type=Path,
        help="measure nothing: report the raw results a previous run saved (JSON)",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="leave docs/ alone: plots and raw results go to build/side-by-side-scratch/",
    )
    arguments = parser.parse_args()
    unknown = set(arguments.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault {sorted(unknown)}: choose from {', '.join(FAULTS)}")
    if arguments.quick:
        arguments.trials, arguments.switchovers, arguments.cost_seconds = 1, 1, 10.0
    return arguments


def main() -> None:
    arguments = parse_arguments()
    if arguments.from_results is not None:
        results = results_from_json(json.loads(arguments.from_results.read_text()))
        report(results, arguments)
        return
    results = Results()
    raw_results = SCRATCH_RAW_RESULTS if arguments.no_report else RAW_RESULTS
    raw_results.parent.mkdir(parents=True, exist_ok=True)
    try:
        measure(arguments, results)
    finally:
        raw_results.write_text(json.dumps(asdict(results)))
        print(f"raw results in {raw_results}; {results.wall_seconds:.0f} s in all")
    report(results, arguments)


def report(results: Results, arguments: argparse.Namespace) -> None:
    from bench.side_by_side_report import publish  # matplotlib only when reporting

    publish(results, write=not arguments.no_report)


if __name__ == "__main__":
    main()
