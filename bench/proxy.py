"""Throughput of rhizome-proxy against HAProxy and a direct connection (pgbench).

One PostgreSQL, one etcd, rhizome-proxy routed to the PostgreSQL through the
store, and HAProxy (Debian's package, tcp mode) started as a plain process
on loopback. pgbench runs select-only (-S) and TPC-B with -c 8 against each
target, interleaved (the order rotates every repetition), and the CPU time
of each proxy process is read from /proc around every run. The medians go to
the "proxy" section of docs/benchmarks.md.

Run with `make bench` (or `PYTHONPATH=. .venv/bin/python bench/proxy.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report import write_section
from rhizome.etcd import EtcdClient, EtcdSettings
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import ClusterState, KeeperAssignment, ProxyTarget
from tests.harness.etcd import start_etcd
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.postgres import POSTGRES_BIN, PostgresInstance
from tests.harness.processes import ServerProcess
from tests.harness.tls import TlsFiles

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WORKLOADS = {"select-only": ["-S"], "TPC-B": []}
POSTGRES_SETTINGS = {"max_connections": "100", "synchronous_commit": "off"}
READING_NOTE = (
    "The rhizome-proxy figure includes its store threads (lease renewal every second, watch; "
    "about 3 ms of CPU per second when idle). On this shared 2-core "
    "machine run-to-run spread is large: compare rows of one run only."
)
HAPROXY_CONFIG = """global
    maxconn 4096
    nbthread {threads}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen postgres
    bind {host}:{port}
    server pg1 {host}:{server_port}
"""


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    pid: int | None  # the proxy process whose CPU time is measured


@dataclass(frozen=True)
class Run:
    target: str
    workload: str
    tps: float
    latency_ms: float
    transactions: int
    cpu_seconds: float | None

    @property
    def cpu_per_transaction_us(self) -> float | None:
        if self.cpu_seconds is None or not self.transactions:
            return None
        return self.cpu_seconds / self.transactions * 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pgbench(arguments: list[str], port: int) -> str:
    command = [str(POSTGRES_BIN / "pgbench"), "-h", LOOPBACK, "-p", str(port), "-U", "postgres"]
    result = subprocess.run(
        [*command, *arguments, "postgres"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(arguments)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def run_once(target: Target, workload: str, duration: int, clients: int) -> Run:
    arguments = [*WORKLOADS[workload], "-n", "-c", str(clients), "-j", "2", "-T", str(duration)]
    cpu_before = cpu_seconds(target.pid) if target.pid else None
    output = pgbench(arguments, target.port)
    cpu_used = (
        cpu_seconds(target.pid) - cpu_before if target.pid and cpu_before is not None else None
    )
    return Run(
        target=target.name,
        workload=workload,
        tps=float(search(r"tps = ([\d.]+)", output)),
        latency_ms=float(search(r"latency average = ([\d.]+) ms", output)),
        transactions=int(search(r"number of transactions actually processed: (\d+)", output)),
        cpu_seconds=cpu_used,
    )


def search(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"pgbench output has no {pattern!r}:\n{text}")
    return match.group(1)


def route_store(etcd_url: str, postgres: PostgresInstance) -> None:
    """Publish a spec and a state whose proxy target is `postgres`."""
    client = EtcdClient(EtcdSettings(endpoints=(etcd_url,)))
    store = ClusterStore(client, "bench")
    store.write_spec(ClusterSpec(), 0)
    state = ClusterState(
        generation=1,
        initialized=True,
        master="pg1",
        assignments={"pg1": KeeperAssignment(role="master")},
        proxy_target=ProxyTarget(
            proxy_generation=1, master="pg1", host=LOOPBACK, port=postgres.port
        ),
    )
    store.write_state(state, 0)
    client.close()


def wait_until_served(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            pgbench(["-S", "-n", "-t", "1"], port)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_rhizome_proxy(
    directory: Path,
    etcd_url: str,
    name: str = "proxy",
    wrapper: Sequence[str] = (),
    require_tls: bool = False,
) -> tuple[ServerProcess, int]:
    """Start rhizome-proxy (proxy id `name`), optionally under `wrapper` (e.g. valgrind)."""
    port = free_port()
    config = directory / f"{name}.toml"
    proxy_id = "bench" if name == "proxy" else name
    config.write_text(
        f'cluster = "bench"\n[etcd]\nendpoints = ["{etcd_url}"]\n[proxy]\nid = "{proxy_id}"\n'
        f'read_write_listen = "{LOOPBACK}:{port}"\nrequire_tls = {str(require_tls).lower()}\n'
        f'[api]\nlisten = "{LOOPBACK}:{free_port()}"\n'
    )
    command = [*wrapper, sys.executable, "-m", "rhizome.proxy.main", "-c", str(config)]
    process = ServerProcess(command, directory / f"{name}.log", env=dict(os.environ))
    process.start()
    return process, port


def start_haproxy(
    directory: Path,
    server_port: int,
    threads: int,
    name: str = "haproxy",
    wrapper: Sequence[str] = (),
) -> tuple[ServerProcess, int]:
    """Start HAProxy in tcp mode with `threads` threads, optionally under `wrapper`."""
    port = free_port()
    config = directory / f"{name}-{threads}.cfg"
    config.write_text(
        HAPROXY_CONFIG.format(threads=threads, host=LOOPBACK, port=port, server_port=server_port)
    )
    command = [*wrapper, "haproxy", "-db", "-f", str(config)]
    process = ServerProcess(command, directory / f"{name}.log")
    process.start()
    return process, port


@contextlib.contextmanager
def routed_postgres(
    directory: Path, scale: int, tls: TlsFiles | None = None
) -> Iterator[tuple[str, PostgresInstance]]:
    """One etcd and one PostgreSQL (pgbench tables at `scale`, TLS on with `tls`), the store
    routing to it.

    Yields (etcd client URL, PostgreSQL); both are stopped on exit.
    """
    etcd = start_etcd(directory, "bench", tls=False, client_cert_auth=False, auth=False)
    postgres = PostgresInstance("pg1", directory / "postgres", settings=POSTGRES_SETTINGS)
    try:
        postgres.initdb()
        if tls is not None:
            postgres.configure(server_tls_settings(postgres, tls))
        postgres.start()
        pgbench(["-i", "-q", "-s", str(scale)], postgres.port)
        route_store(etcd.client_url, postgres)
        yield etcd.client_url, postgres
    finally:
        postgres.cleanup()
        etcd.stop()


def server_tls_settings(postgres: PostgresInstance, tls: TlsFiles) -> dict[str, str]:
    """ssl = on with copies of the server's certificate and key that its user owns."""
    settings = {"ssl": "on"}
    for name, source in (
        ("ssl_cert_file", tls.server_cert_file),
        ("ssl_key_file", tls.server_key_file),
    ):
        copy = postgres.root_dir / source.name
        shutil.copyfile(source, copy)
        copy.chmod(0o600)
        if postgres.os_user is not None:
            shutil.chown(copy, postgres.os_user, postgres.os_user)
        settings[name] = str(copy)
    return settings


def measure(arguments: argparse.Namespace) -> list[Run]:
    with (
        tempfile.TemporaryDirectory(prefix="rhizome-bench-proxy-") as name,
        routed_postgres(Path(name), arguments.scale) as (etcd_url, postgres),
    ):
        directory = Path(name)
        processes: list[ServerProcess] = []
        try:
            targets = [Target("direct", postgres.port, None)]
            rhizome, rhizome_port = start_rhizome_proxy(directory, etcd_url)
            processes.append(rhizome)
            targets.append(Target("rhizome-proxy", rhizome_port, rhizome.pid))
            for threads in arguments.haproxy_threads:
                haproxy, haproxy_port = start_haproxy(directory, postgres.port, threads)
                processes.append(haproxy)
                targets.append(Target(haproxy_name(threads), haproxy_port, haproxy.pid))
            for target in targets:
                wait_until_served(target.port)
            return interleaved_runs(targets, arguments)
        finally:
            for process in processes:
                process.stop()


def haproxy_name(threads: int) -> str:
    return f"haproxy ({threads} thread{'s' if threads > 1 else ''})"


def interleaved_runs(targets: list[Target], arguments: argparse.Namespace) -> list[Run]:
    for target in targets:  # warm caches and connections; not counted
        run_once(target, "select-only", 3, arguments.clients)
    runs = []
    for repetition in range(arguments.repetitions):
        for workload in WORKLOADS:
            shift = repetition % len(targets)
            for target in targets[shift:] + targets[:shift]:
                run = run_once(target, workload, arguments.duration, arguments.clients)
                print(f"  {repetition + 1} {workload:11} {target.name:20} {run.tps:9.0f} tps")
                runs.append(run)
    return runs


@dataclass(frozen=True)
class Summary:
    tps: float
    tps_low: float
    tps_high: float
    latency: float
    cpu: float | None


def median_of(runs: list[Run], target: str, workload: str) -> Summary:
    chosen = [run for run in runs if run.target == target and run.workload == workload]
    cpu = [run.cpu_per_transaction_us for run in chosen if run.cpu_per_transaction_us is not None]
    return Summary(
        tps=statistics.median(run.tps for run in chosen),
        tps_low=min(run.tps for run in chosen),
        tps_high=max(run.tps for run in chosen),
        latency=statistics.median(run.latency_ms for run in chosen),
        cpu=statistics.median(cpu) if cpu else None,
    )


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def render(runs: list[Run], arguments: argparse.Namespace, loads: tuple[str, str]) -> str:
    reference = haproxy_name(arguments.haproxy_threads[0])
    heading = [
        "## Proxy throughput (pgbench through rhizome-proxy, HAProxy, direct)",
        "",
        f"`bench/proxy.py`, {setup_text(arguments)} HAProxy 2.6 (Debian) in tcp "
        "mode as a process on loopback. CPU: user + system time of the proxy process per "
        f"transaction. Ratios against {reference}. Load average before/after the runs: "
        f"{loads[0]}/{loads[1]} (the machine is shared; the TPS range shows the spread).",
    ]
    return "\n".join([*heading, *table(runs, reference), "", READING_NOTE])


def setup_text(arguments: argparse.Namespace) -> str:
    return (
        f"{time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} "
        f"cores, PostgreSQL 15 (synchronous_commit off, scale {arguments.scale}), pgbench "
        f"-c {arguments.clients} -j 2 -T {arguments.duration}, {arguments.repetitions} "
        "repetitions interleaved (order rotated each time); medians."
    )


def table(runs: list[Run], reference: str) -> list[str]:
    """The results table, each target's medians against `reference`'s."""
    targets = list(dict.fromkeys(run.target for run in runs))
    lines = [
        "",
        "| workload | target | TPS (min..max) | latency ms | proxy CPU µs/txn | TPS ratio "
        "| CPU ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload in WORKLOADS:
        base = median_of(runs, reference, workload)
        for target in targets:
            figures = median_of(runs, target, workload)
            tps_ratio = f"{figures.tps / base.tps:.2f}" if base.tps else "-"
            cpu, base_cpu = figures.cpu, base.cpu
            cpu_text = f"{cpu:.1f}" if cpu is not None else "-"
            cpu_ratio = f"{cpu / base_cpu:.2f}" if cpu is not None and base_cpu else "-"
            lines.append(
                f"| {workload} | {target} | {figures.tps:.0f} ({figures.tps_low:.0f}.."
                f"{figures.tps_high:.0f}) | {figures.latency:.2f} "
                f"| {cpu_text} | {tps_ratio} | {cpu_ratio} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per pgbench run")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument(
        "--haproxy-threads",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 2],
        help="HAProxy configurations to compare (nbthread values; the first is the reference)",
    )
    parser.add_argument("--no-report", action="store_true", help="print only")
    arguments = parser.parse_args()
    before = load_average()
    runs = measure(arguments)
    section = render(runs, arguments, (before, load_average()))
    print(section)
    if not arguments.no_report:
        write_section("proxy", section)


if __name__ == "__main__":
    main()
