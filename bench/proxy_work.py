"""Work per transaction of rhizome-proxy and HAProxy, counted rather than timed.

Wall-clock CPU on a shared 2-core machine is too noisy to compare two proxies
that are within ~10% of each other, so this benchmark counts the work each
proxy does for a fixed number of pgbench transactions (-c 8, select-only and
TPC-B, the same setup as bench/proxy.py):

1. system calls per transaction by kind, from `strace -f` attached for the run
   (strace slows the proxy but does not change which calls it makes, apart
   from epoll_wait batching, which depends on timing);
2. user-space instructions per transaction, from callgrind (a second
   rhizome-proxy and a second HAProxy run under valgrind; counters zeroed
   before and dumped after each run, per thread);
3. CPU time per transaction (user + system of every thread, from
   /proc/PID/task/*/schedstat, nanoseconds), many short runs interleaved, with
   the median of the rhizome/HAProxy ratio of adjacent runs.

Each figure separates the event-loop thread of rhizome-proxy from its store
threads (lease renewal, watch). The tables go to the
"proxy-work" section of docs/benchmarks.md.

Run with `PYTHONPATH=. .venv/bin/python bench/proxy_work.py`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from bench.proxy import (
    WORKLOADS,
    load_average,
    pgbench,
    routed_postgres,
    search,
    start_haproxy,
    start_rhizome_proxy,
    wait_until_served,
)
from bench.report import write_section
from tests.harness.processes import ServerProcess

PROXIES = ("rhizome-proxy", "haproxy")
STRACE_LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")
VALGRIND = [
    "valgrind",
    "--tool=callgrind",
    "--separate-threads=yes",
    "--cache-sim=yes",
    "--branch-sim=yes",
]
READING_NOTE = (
    "System call and instruction figures are counts: they repeat from run to run whatever "
    "else the machine does (only epoll_wait batching depends on timing), unlike the CPU "
    "column, whose spread on this shared 2-core machine is wider than the difference being "
    "measured. Both proxies make one read and one write per forwarded message (TCP_NODELAY "
    "on both sides, no splice, no EAGAIN reads); HAProxy adds clock_gettime calls for its "
    "CPU-time accounting. In user space, uvloop takes the GIL twice per read (its read-buffer "
    "allocation callback is `with gil`, then the read callback), and rhizome-proxy's store "
    "threads renew the lease every second whatever the load."
)
SHOWN_SYSCALLS = 9
"""Syscall kinds listed one by one in the table (the most frequent); the rest are summed."""


@dataclass(frozen=True)
class Counts:
    """Callgrind totals: instructions and estimated cycles."""

    instructions: float = 0.0
    cycles: float = 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.instructions + other.instructions, self.cycles + other.cycles)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.instructions - other.instructions, self.cycles - other.cycles)

    def scaled(self, factor: float) -> Counts:
        return Counts(self.instructions * factor, self.cycles * factor)


def dump_counts(text: str) -> Counts:
    """Totals of one callgrind dump, with kcachegrind's cycle estimate.

    CEst = Ir + 10 x (L1 misses + mispredicted branches) + 100 x last-level misses,
    from callgrind's simulated caches and branch predictor.
    """
    names = search(r"(?m)^events:\s+(.*)$", text).split()
    values = [int(value) for value in search(r"(?m)^totals:\s+(.*)$", text).split()]
    event = dict(zip(names, values + [0] * (len(names) - len(values)), strict=True))
    level1 = event.get("I1mr", 0) + event.get("D1mr", 0) + event.get("D1mw", 0)
    last_level = event.get("ILmr", 0) + event.get("DLmr", 0) + event.get("DLmw", 0)
    branches = event.get("Bcm", 0) + event.get("Bim", 0)
    ir = event["Ir"]
    return Counts(ir, ir + 10 * (level1 + branches) + 100 * last_level)


@dataclass
class Work:
    """What one proxy did for one workload."""

    transactions: int = 0
    syscalls: Counter[str] = field(default_factory=Counter)
    """Per kind, every thread."""
    eagain: Counter[str] = field(default_factory=Counter)
    """Calls that returned EAGAIN, per kind."""
    other_thread_syscalls: int = 0
    """Part of `syscalls` made by threads other than the main (event-loop) one."""
    main: Counts = Counts()
    """User space per transaction, main (event-loop) thread, marginal (callgrind)."""
    time_driven: Counts = Counts()
    """Part of `main` that its idle rate accounts for (timers, wake-ups from the store threads)."""
    tps: list[float] = field(default_factory=list)
    """Transactions per second of the CPU runs (to scale the store threads' per-second work)."""
    user_ticks: int = 0
    system_ticks: int = 0
    cpu_us: list[float] = field(default_factory=list)
    """CPU µs per transaction, one per run."""
    other_thread_cpu_us: list[float] = field(default_factory=list)


@dataclass
class Proxy:
    name: str
    port: int
    pid: int
    process: ServerProcess


def per_client(workload: str, arguments: argparse.Namespace, factor: float = 1.0) -> int:
    base = (
        arguments.select_transactions if workload == "select-only" else arguments.tpcb_transactions
    )
    return max(1, int(base * factor))


def run_pgbench(port: int, workload: str, transactions: int, clients: int) -> int:
    """pgbench -t: `transactions` per client; returns the total processed."""
    arguments = [*WORKLOADS[workload], "-n", "-c", str(clients), "-j", "2", "-t", str(transactions)]
    output = pgbench(arguments, port)
    return int(search(r"number of transactions actually processed: (\d+)", output))


# -- system calls ------------------------------------------------------------


def tasks(pid: int) -> list[int]:
    return [int(entry.name) for entry in Path(f"/proc/{pid}/task").iterdir()]


def tracer_of(tid: int) -> int:
    status = Path(f"/proc/{tid}/status").read_text()
    return int(search(r"TracerPid:\s+(\d+)", status))


def count_syscalls(proxy: Proxy, workload: str, arguments: argparse.Namespace, out: Path) -> Work:
    command = ["strace", "-f", "-qq", "-s", "0", "-o", str(out), "-p", str(proxy.pid)]
    strace = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not all(tracer_of(tid) == strace.pid for tid in tasks(proxy.pid)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"strace did not attach to {proxy.name}")
            time.sleep(0.1)
        total = run_pgbench(
            proxy.port, workload, per_client(workload, arguments), arguments.clients
        )
    finally:
        strace.send_signal(signal.SIGINT)  # detaches; the proxy runs on
        strace.wait(timeout=30)
    work = Work(transactions=total)
    with out.open() as lines:
        for line in lines:
            match = STRACE_LINE.match(line)
            if match is None:
                continue
            tid, resumed, name = int(match.group(1)), match.group(2), match.group(3)
            if name is not None:
                work.syscalls[name] += 1
                if tid != proxy.pid:
                    work.other_thread_syscalls += 1
            if "= -1 EAGAIN" in line:
                work.eagain[resumed or name] += 1
    out.unlink()
    return work


# -- user-space instructions -------------------------------------------------


def callgrind_control(option: str, pid: int) -> None:
    subprocess.run(
        ["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120
    )


@dataclass(frozen=True)
class CallgrindRun:
    transactions: int
    main: Counts
    """The main thread (the event loop for rhizome-proxy)."""
    others: Counts
    """The threads other than the main one."""
    seconds: float


def count_instructions(
    proxy: Proxy, workload: str, arguments: argparse.Namespace, directory: Path, idle: Counts
) -> tuple[Counts, Counts]:
    """Marginal counts per transaction of the main thread: (measured, time-driven part).

    A run of -t 1 (connection set-up and tear-down, 8 transactions) is subtracted
    from the measured run, so the figure is what one more transaction costs.
    The time-driven part is the main thread's idle rate (`idle`, counts per
    second with no client: timers, wake-ups) times the extra duration: under
    valgrind a run lasts ~50 times longer, so that part is inflated as much.
    """
    transactions = per_client(workload, arguments, arguments.callgrind_fraction)
    small = callgrind_run(proxy, workload, 1, arguments, directory)
    large = callgrind_run(proxy, workload, transactions, arguments, directory)
    per_transaction = 1 / (large.transactions - small.transactions)
    return (
        (large.main - small.main).scaled(per_transaction),
        idle.scaled((large.seconds - small.seconds) * per_transaction),
    )


def callgrind_run(
    proxy: Proxy,
    workload: str | None,
    transactions: int,
    arguments: argparse.Namespace,
    directory: Path,
) -> CallgrindRun:
    """Counters zeroed, one pgbench run (or `transactions` seconds idle if no workload), dump."""
    before = set(directory.glob("callgrind.*"))
    callgrind_control("-z", proxy.pid)
    started = time.monotonic()
    if workload is None:
        time.sleep(transactions)
        total = 0
    else:
        total = run_pgbench(proxy.port, workload, transactions, arguments.clients)
    seconds = time.monotonic() - started
    callgrind_control("-d", proxy.pid)
    main = others = Counts()
    for dump in sorted(set(directory.glob("callgrind.*")) - before):
        counts = dump_counts(dump.read_text())
        if dump.name.endswith("-01"):  # thread 1 is the main thread
            main += counts
        else:
            others += counts
        if arguments.keep_callgrind is not None and transactions > 1:
            keep = arguments.keep_callgrind / f"{proxy.name}-{workload or 'idle'}-{dump.name}"
            keep.write_bytes(dump.read_bytes())
        dump.unlink()
    return CallgrindRun(total, main, others, seconds)


# -- CPU time ----------------------------------------------------------------


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """CPU time (ns, user + system) of every thread of a process."""
    times = {}
    for tid in tasks(pid):
        try:
            times[tid] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, IndexError):
            continue
    return times


def user_system_ticks(pid: int) -> tuple[int, int]:
    """(user, system) CPU clock ticks of a process, every thread (rusage)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def cpu_run(proxy: Proxy, workload: str, arguments: argparse.Namespace, work: Work) -> float:
    before, ticks_before = thread_cpu_ns(proxy.pid), user_system_ticks(proxy.pid)
    started = time.monotonic()
    total = run_pgbench(proxy.port, workload, per_client(workload, arguments), arguments.clients)
    work.tps.append(total / (time.monotonic() - started))
    after, ticks_after = thread_cpu_ns(proxy.pid), user_system_ticks(proxy.pid)
    work.user_ticks += ticks_after[0] - ticks_before[0]
    work.system_ticks += ticks_after[1] - ticks_before[1]
    used = {tid: after[tid] - before.get(tid, 0) for tid in after}
    all_us = sum(used.values()) / 1e3 / total
    work.cpu_us.append(all_us)
    work.other_thread_cpu_us.append(
        sum(ns for tid, ns in used.items() if tid != proxy.pid) / 1e3 / total
    )
    return all_us


# -- the run -----------------------------------------------------------------


@dataclass
class Results:
    work: dict[tuple[str, str], Work] = field(default_factory=dict)
    idle_rate: dict[str, tuple[Counts, Counts]] = field(default_factory=dict)
    """Counts per second with no client (main thread, other threads), per proxy."""
    ratios: dict[str, list[float]] = field(default_factory=dict)
    """rhizome/HAProxy CPU per transaction of adjacent runs, per workload."""

    def of(self, proxy: str, workload: str) -> Work:
        return self.work.setdefault((proxy, workload), Work())


def measure(arguments: argparse.Namespace) -> Results:
    results = Results()
    with (
        tempfile.TemporaryDirectory(prefix="rhizome-bench-proxy-work-") as name,
        routed_postgres(Path(name), arguments.scale) as (etcd_url, postgres),
    ):
        directory = Path(name)
        processes: list[ServerProcess] = []
        try:
            proxies = start_proxies(directory, etcd_url, postgres.port, processes, wrapper=[])
            for proxy in proxies:
                wait_until_served(proxy.port)
                run_pgbench(proxy.port, "select-only", 200, arguments.clients)  # warm up
            if "syscalls" in arguments.phases:
                syscall_phase(proxies, arguments, directory, results)
            if "cpu" in arguments.phases:
                cpu_phase(proxies, arguments, results)
            if "instructions" in arguments.phases:  # last: valgrind's threads load the machine
                for proxy in proxies:
                    proxy.process.stop()
                wrapper = [*VALGRIND, f"--callgrind-out-file={directory}/callgrind.%p"]
                traced = start_proxies(directory, etcd_url, postgres.port, processes, wrapper)
                for proxy in traced:
                    wait_until_served(proxy.port, timeout=600)
                instruction_phase(traced, arguments, directory, results)
        finally:
            for process in processes:
                process.stop()
    return results


def start_proxies(
    directory: Path,
    etcd_url: str,
    server_port: int,
    processes: list[ServerProcess],
    wrapper: list[str],
) -> list[Proxy]:
    suffix = "-valgrind" if wrapper else ""
    rhizome, rhizome_port = start_rhizome_proxy(directory, etcd_url, f"proxy{suffix}", wrapper)
    processes.append(rhizome)
    haproxy, haproxy_port = start_haproxy(directory, server_port, 1, f"haproxy{suffix}", wrapper)
    processes.append(haproxy)
    return [
        Proxy("rhizome-proxy", rhizome_port, rhizome.pid, rhizome),
        Proxy("haproxy", haproxy_port, haproxy.pid, haproxy),
    ]


def syscall_phase(
    proxies: list[Proxy], arguments: argparse.Namespace, directory: Path, results: Results
) -> None:
    for workload in WORKLOADS:
        for proxy in proxies:
            counted = count_syscalls(proxy, workload, arguments, directory / "strace.txt")
            work = results.of(proxy.name, workload)
            work.syscalls, work.eagain = counted.syscalls, counted.eagain
            work.other_thread_syscalls = counted.other_thread_syscalls
            work.transactions = counted.transactions
            per_txn = sum(counted.syscalls.values()) / counted.transactions
            print(f"  syscalls     {workload:11} {proxy.name:14} {per_txn:8.2f} /txn")


def instruction_phase(
    proxies: list[Proxy], arguments: argparse.Namespace, directory: Path, results: Results
) -> None:
    idle = {}
    for proxy in proxies:
        run = callgrind_run(proxy, None, arguments.idle_seconds, arguments, directory)
        idle[proxy.name] = run.main.scaled(1 / run.seconds)
        results.idle_rate[proxy.name] = (idle[proxy.name], run.others.scaled(1 / run.seconds))
        print(
            f"  idle         {proxy.name:26} {run.main.instructions / run.seconds:9.0f} /s main, "
            f"{run.others.instructions / run.seconds:9.0f} /s other threads"
        )
    for workload in WORKLOADS:
        for proxy in proxies:
            main, timed = count_instructions(
                proxy, workload, arguments, directory, idle[proxy.name]
            )
            work = results.of(proxy.name, workload)
            work.main, work.time_driven = main, timed
            print(
                f"  instructions {workload:11} {proxy.name:14} {main.instructions:8.0f} /txn "
                f"({timed.instructions:.0f} time-driven), {main.cycles:8.0f} est. cycles"
            )


def cpu_phase(proxies: list[Proxy], arguments: argparse.Namespace, results: Results) -> None:
    for repetition in range(arguments.repetitions):
        for workload in WORKLOADS:
            ordered = proxies if repetition % 2 == 0 else proxies[::-1]
            used = {
                proxy.name: cpu_run(proxy, workload, arguments, results.of(proxy.name, workload))
                for proxy in ordered
            }
            ratio = used["rhizome-proxy"] / used["haproxy"]
            results.ratios.setdefault(workload, []).append(ratio)
            print(f"  cpu {repetition + 1:2}       {workload:11} ratio {ratio:.2f}")


# -- the report --------------------------------------------------------------


def render(results: Results, arguments: argparse.Namespace, loads: tuple[str, str]) -> str:
    lines = [
        "## Proxy work per transaction (system calls, instructions, CPU)",
        "",
        f"`bench/proxy_work.py`, {time.strftime('%Y-%m-%d')}, {platform.node()}: "
        f"{os.cpu_count()} cores, the setup of `bench/proxy.py` (PostgreSQL 15, scale "
        f"{arguments.scale}, HAProxy 2.6 tcp mode, 1 thread), pgbench -c {arguments.clients} -j 2 "
        f"-t N. Python {platform.python_version()}, uvloop {version('uvloop')}. Load average "
        f"before/after: {loads[0]}/{loads[1]}.",
        "",
    ]
    if "syscalls" in arguments.phases:
        lines += syscall_table(results, arguments)
    if "instructions" in arguments.phases:
        lines += instruction_table(results, arguments)
    if "cpu" in arguments.phases:
        lines += cpu_table(results, arguments)
    lines.append(READING_NOTE)
    return "\n".join(lines)


def syscall_table(results: Results, arguments: argparse.Namespace) -> list[str]:
    lines = [
        f"System calls per transaction (`strace -f` attached for one run of -t "
        f"{arguments.select_transactions} select-only / -t {arguments.tpcb_transactions} TPC-B "
        "per client, connection set-up included; in brackets: calls that returned EAGAIN; "
        "`other threads`: rhizome-proxy's store threads, whose rate is per second, so inflated "
        "by strace's slowdown):",
        "",
    ]
    for workload in WORKLOADS:
        kinds: dict[str, float] = {}
        for proxy in PROXIES:
            work = results.of(proxy, workload)
            for kind, count in work.syscalls.items():
                kinds[kind] = kinds.get(kind, 0.0) + count / max(work.transactions, 1)
        shown = sorted(kinds, key=kinds.__getitem__, reverse=True)[:SHOWN_SYSCALLS]
        lines += [
            f"| {workload} | {' | '.join(shown)} | other kinds | total | other threads |",
            "|---|" + "---|" * (len(shown) + 3),
        ]
        for proxy in PROXIES:
            work = results.of(proxy, workload)
            n = max(work.transactions, 1)
            cells = []
            for kind in shown:
                cell = f"{work.syscalls[kind] / n:.2f}"
                if work.eagain[kind]:
                    cell += f" ({work.eagain[kind] / n:.2f})"
                cells.append(cell)
            rest = sum(count for kind, count in work.syscalls.items() if kind not in shown)
            total = sum(work.syscalls.values())
            lines.append(
                f"| {proxy} | {' | '.join(cells)} | {rest / n:.2f} | {total / n:.2f} "
                f"| {work.other_thread_syscalls / n:.2f} |"
            )
        lines.append("")
    return lines


def instruction_table(results: Results, arguments: argparse.Namespace) -> list[str]:
    idle = ", ".join(
        f"{proxy} main thread {main.instructions / 1e3:.0f} k/s, other threads "
        f"{others.instructions / 1e6:.2f} M/s"
        for proxy, (main, others) in results.idle_rate.items()
    )
    lines = [
        "User space per transaction (callgrind with simulated caches and branch predictor, "
        "marginal: a run of -t "
        f"{per_client('select-only', arguments, arguments.callgrind_fraction)} / "
        f"{per_client('TPC-B', arguments, arguments.callgrind_fraction)} per client minus a run "
        "of -t 1, i.e. without connection set-up). `forwarding`: the main thread (HAProxy's "
        "only busy one, rhizome-proxy's event loop) minus what its idle rate accounts for over "
        "the run's duration under valgrind (~50 times the real one). `store threads`: "
        "rhizome-proxy's lease and watch threads, whose work is per second, not per "
        "transaction: their idle rate divided by the proxy's median TPS in the CPU runs below. "
        f"Idle rates: {idle}. Estimated cycles: Ir + 10 x (L1 misses + mispredicted branches) "
        "+ 100 x LL misses:",
        "",
        "| workload | proxy | forwarding instructions | ratio | forwarding est. cycles | ratio "
        "| store threads instructions | total instructions | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for workload in WORKLOADS:
        totals = {proxy: total_instructions(results, proxy, workload) for proxy in PROXIES}
        base = results.of("haproxy", workload)
        base_forwarding = base.main - base.time_driven
        for proxy in PROXIES:
            work = results.of(proxy, workload)
            forwarding = work.main - work.time_driven
            store, total = totals[proxy]
            base_total = totals["haproxy"][1]
            cells = [
                f"{forwarding.instructions:,.0f}",
                ratio(forwarding.instructions, base_forwarding.instructions),
                f"{forwarding.cycles:,.0f}",
                ratio(forwarding.cycles, base_forwarding.cycles),
                f"{store:,.0f}" if store is not None else "-",
                f"{total:,.0f}" if total is not None else "-",
                ratio(total, base_total) if total is not None and base_total is not None else "-",
            ]
            lines.append(f"| {workload} | {proxy} | {' | '.join(cells)} |")
    return [*lines, ""]


def total_instructions(
    results: Results, proxy: str, workload: str
) -> tuple[float | None, float | None]:
    """(store threads' instructions per transaction at the real TPS, forwarding + that)."""
    work = results.of(proxy, workload)
    if proxy not in results.idle_rate or not work.tps:
        return None, None
    store = results.idle_rate[proxy][1].instructions / statistics.median(work.tps)
    return store, (work.main - work.time_driven).instructions + store


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "-"


def cpu_table(results: Results, arguments: argparse.Namespace) -> list[str]:
    lines = [
        "CPU per transaction (user + system of every thread from /proc/PID/task/*/schedstat; "
        f"median (min..max) of {arguments.repetitions} runs of the -t N of the system call "
        "table, the two proxies alternating; `user %`: share of user time in the rusage ticks "
        "of those runs; the CPU ratio is the median (min..max) of the ratios of adjacent "
        "runs):",
        "",
        "| workload | proxy | TPS | CPU µs/txn | of which store threads | user % | CPU ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload in WORKLOADS:
        ratios = results.ratios.get(workload, [])
        for proxy in PROXIES:
            work = results.of(proxy, workload)
            if not work.cpu_us:
                continue
            ticks = work.user_ticks + work.system_ticks
            cells = [
                f"{statistics.median(work.tps):.0f}",
                f"{statistics.median(work.cpu_us):.1f} "
                f"({min(work.cpu_us):.1f}..{max(work.cpu_us):.1f})",
                f"{statistics.median(work.other_thread_cpu_us):.2f}",
                f"{100 * work.user_ticks / ticks:.0f}" if ticks else "-",
                f"{statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})"
                if proxy == "rhizome-proxy"
                else "1.00",
            ]
            lines.append(f"| {workload} | {proxy} | {' | '.join(cells)} |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument(
        "--select-transactions", type=int, default=3000, help="select-only -t (per client)"
    )
    parser.add_argument("--tpcb-transactions", type=int, default=400, help="TPC-B -t (per client)")
    parser.add_argument(
        "--callgrind-fraction",
        type=float,
        default=0.1,
        help="share of -t used under callgrind (valgrind is ~50x slower)",
    )
    parser.add_argument(
        "--idle-seconds", type=int, default=10, help="idle instruction rate measured this long"
    )
    parser.add_argument("--repetitions", type=int, default=15, help="CPU runs per proxy")
    parser.add_argument(
        "--phases",
        type=lambda text: text.split(","),
        default=["syscalls", "instructions", "cpu"],
        help="comma-separated subset of syscalls,instructions,cpu",
    )
    parser.add_argument(
        "--keep-callgrind", type=Path, help="copy the callgrind dumps to this directory"
    )
    parser.add_argument("--no-report", action="store_true", help="print only")
    arguments = parser.parse_args()
    before = load_average()
    results = measure(arguments)
    section = render(results, arguments, (before, load_average()))
    print(section)
    if not arguments.no_report:
        write_section("proxy-work", section)


if __name__ == "__main__":
    main()
