"""The markdown section and PNG plots of bench/side_by_side.py's results."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.patroni_cluster import DEFAULT_TIMING, PATRONI_VERSION
from bench.probes import PATIENT_CONNECT_DEADLINE, Summary, ratio, summarize
from bench.report import REPORT, write_section
from bench.trials import (
    FAULT_TIMEOUT,
    FAULTS,
    AgentCost,
    FailoverTrial,
    Results,
    SwitchoverTrial,
)
from rhizome.spec import ClusterSpec
from tests.harness.postgres import POSTGRES_BIN

SECTION = "side-by-side"  # the method; each part has its own section (SECTION-<part>)
PLOTS = REPORT.parent / "benchmarks"
PLOT_LINK = "benchmarks"  # relative to docs/benchmarks.md
FAILOVER_PLOT = "failover-side-by-side.png"
TIMELINE_PLOT = "switchover-timeline.png"
HEADING = "## Side by side with Patroni: failover, switchover, agent cost"
SCRATCH_PLOTS = REPORT.parent.parent / "build" / "side-by-side-scratch"
SYSTEMS = ("rhizome", "Patroni")
CLIENTS = ("session", "new connection per transaction")
COLORS = {"rhizome": "tab:green", "Patroni": "tab:blue"}
HOST_DEATH_TARGET = 6.0
HOST_DEATH_RATIO_TARGET = 0.3
PAUSE_TARGET = 1.0


def first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    return (result.stdout or result.stderr).strip().splitlines()[0]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def cells(summary: Summary | None) -> str:
    if summary is None:
        return "- | - | -"
    return f"{summary.median:.2f} | {summary.p90:.2f} | {summary.maximum:.2f}"


def ratios(rhizome: Summary | None, patroni: Summary | None) -> str:
    if rhizome is None or patroni is None:
        return "-"
    pairs = [(rhizome.median, patroni.median), (rhizome.p90, patroni.p90)]
    pairs.append((rhizome.maximum, patroni.maximum))
    return " / ".join(ratio(mine, theirs) for mine, theirs in pairs)


def failover_summary(trials: list[FailoverTrial], system: str, fault: str) -> Summary | None:
    chosen = [t.seconds for t in trials if t.system == system and t.fault == fault]
    return summarize([seconds for seconds in chosen if seconds is not None])


def failover_table(results: Results) -> list[str]:
    lines = [
        "| fault | system | trials | median s | p90 s | max s | no recovery | lost writes "
        "| rhizome/Patroni (median / p90 / max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fault in FAULTS:
        summaries = {s: failover_summary(results.failovers, s, fault) for s in SYSTEMS}
        for system in SYSTEMS:
            chosen = [t for t in results.failovers if t.system == system and t.fault == fault]
            if not chosen:
                continue
            missing = sum(1 for t in chosen if t.seconds is None)
            lost = sum(t.lost for t in chosen)
            shown_ratio = ratios(summaries["rhizome"], summaries["Patroni"])
            lines.append(
                f"| {fault} | {system} | {len(chosen)} | {cells(summaries[system])} | {missing} "
                f"| {lost} | {shown_ratio if system == 'rhizome' else ''} |"
            )
    return lines


def switchover_summary(trials: list[SwitchoverTrial], system: str, client: str) -> Summary | None:
    return summarize([t.clients[client].pause for t in trials if t.system == system])


def switchover_table(results: Results) -> list[str]:
    lines = [
        "| client | system | trials | pause median s | p90 s | max s | failed connects "
        "| failed transactions | lost writes | rhizome/Patroni pause (median / p90 / max) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for client in CLIENTS:
        summaries = {s: switchover_summary(results.switchovers, s, client) for s in SYSTEMS}
        for system in SYSTEMS:
            chosen = [t.clients[client] for t in results.switchovers if t.system == system]
            if not chosen:
                continue
            shown_ratio = ratios(summaries["rhizome"], summaries["Patroni"])
            lines.append(
                f"| {client} | {system} | {len(chosen)} | {cells(summaries[system])} "
                f"| {sum(c.failed_connections for c in chosen)} "
                f"| {sum(c.failed_transactions for c in chosen)} | {sum(c.lost for c in chosen)} "
                f"| {shown_ratio if system == 'rhizome' else ''} |"
            )
    return [*lines, "", *error_lines(results)]


def error_lines(results: Results) -> list[str]:
    """What the failed attempts of each client said during the switchovers, summed."""
    lines = ["Errors the clients saw during the switchovers (all trials):", ""]
    for system in SYSTEMS:
        for client in CLIENTS:
            counts: dict[str, int] = {}
            for trial in results.switchovers:
                if trial.system == system:
                    for kind, count in trial.clients[client].errors.items():
                        counts[kind] = counts.get(kind, 0) + count
            shown = "; ".join(f"{count}x {kind}" for kind, count in sorted(counts.items()))
            lines.append(f"- {system}, {client}: {shown or 'none'}")
    return lines


def cost_table(costs: list[AgentCost]) -> list[str]:
    lines = [
        "| system | component | processes | CPU % of one core | RSS MiB |",
        "|---|---|---|---|---|",
    ]
    totals: dict[str, tuple[float, float]] = {}
    for cost in costs:
        lines.append(
            f"| {cost.system} | {cost.component} | {cost.processes} | {cost.cpu_percent:.2f} "
            f"| {cost.rss_mib:.1f} |"
        )
        cpu, rss = totals.get(cost.system, (0.0, 0.0))
        totals[cost.system] = (cpu + cost.cpu_percent, rss + cost.rss_mib)
    for system, (cpu, rss) in totals.items():
        lines.append(f"| {system} | **all agents** | | {cpu:.2f} | {rss:.1f} |")
    if set(SYSTEMS) <= set(totals):
        (cpu_r, rss_r), (cpu_p, rss_p) = totals["rhizome"], totals["Patroni"]
        lines.append(f"| rhizome/Patroni | | | {ratio(cpu_r, cpu_p)} | {ratio(rss_r, rss_p)} |")
    return lines


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def target_lines(results: Results, failover: bool) -> list[str]:
    """The compass's targets, met or not, for the failover or the switchover part."""
    lines = ["Targets:", ""]
    if not failover:
        return lines + switchover_target_lines(results)
    rhizome = failover_summary(results.failovers, "rhizome", "host death")
    patroni = failover_summary(results.failovers, "Patroni", "host death")
    if rhizome is not None:
        lines.append(
            f"- host-death failover median ≤ {HOST_DEATH_TARGET:g} s: {rhizome.median:.2f} s, "
            f"{verdict(rhizome.median <= HOST_DEATH_TARGET)}"
        )
    if rhizome is not None and patroni is not None:
        share = rhizome.median / patroni.median
        lines.append(
            f"- ≤ {HOST_DEATH_RATIO_TARGET:g}x Patroni's with defaults: {share:.2f}x "
            f"({rhizome.median:.2f} s / {patroni.median:.2f} s), "
            f"{verdict(share <= HOST_DEATH_RATIO_TARGET)}"
        )
    return lines


def switchover_target_lines(results: Results) -> list[str]:
    lines = []
    for client in CLIENTS:
        pauses = switchover_summary(results.switchovers, "rhizome", client)
        if pauses is not None:
            lines.append(
                f"- switchover write pause ≤ {PAUSE_TARGET:g} s ({client} client): median "
                f"{pauses.median:.2f} s, max {pauses.maximum:.2f} s, "
                f"{verdict(pauses.median <= PAUSE_TARGET)} for the median"
            )
    chosen = [t.clients[CLIENTS[1]] for t in results.switchovers if t.system == "rhizome"]
    if chosen:
        refused = sum(c.failed_connections for c in chosen)
        lines.append(
            f"- zero refused new connections during switchover: {refused} in {len(chosen)} "
            f"switchovers, {verdict(refused == 0)}"
        )
    return lines


def run_line(results: Results, what: str) -> str:
    """When and how loaded the run that measured this part was."""
    return (
        f"{what}: run of {results.started}, load average {results.load_before} before and "
        f"{results.load_after} after, {results.wall_seconds / 60:.0f} min in all."
    )


def method_lines() -> list[str]:
    timing = ClusterSpec().timing
    patroni_timing = ", ".join(f"{name} {value}" for name, value in DEFAULT_TIMING.items())
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return [
        f"`bench/side_by_side.py` on {platform.node()}: {os.cpu_count()} cores ({cpu_model()}), "
        f"{memory_kib / 1024**2:.0f} GiB. "
        f"{first_line([str(POSTGRES_BIN / 'postgres'), '--version'])}; "
        f"{first_line(['etcd', '--version'])}; {first_line(['haproxy', '-v'])}.",
        "",
        "Both systems run at the same time on one etcd member on loopback, three PostgreSQL "
        "nodes each, asynchronous replication, and take turns: each round runs one trial of "
        "each system per fault type, in alternating order.",
        f"- **rhizome**: three keepers, one sentinel, one rhizome-proxy; default spec (keeper "
        f"lease {timing.keeper_lease_ttl:g} s, fence deadline {timing.fence_deadline:g} s, "
        f"failover delay {timing.failover_delay:g} s, master recovery grace "
        f"{timing.master_recovery_grace:g} s, proxy hold timeout {timing.proxy_hold_timeout:g} "
        "s). Switchover: `rhizomectl switchover --wait`.",
        f"- **Patroni {PATRONI_VERSION}** (PyPI, `patroni[etcd3]`, own virtualenv, etcd3 v3 "
        f"JSON gateway): documented defaults ({patroni_timing}, maximum_lag_on_failover 1 MB) "
        "plus use_pg_rewind; HAProxy with the health check Patroni's documentation recommends "
        "(`option httpchk OPTIONS /primary`, `http-check expect status 200`, `default-server "
        "inter 3s fall 3 rise 2 on-marked-down shutdown-sessions`). Switchover: REST API "
        "`POST /switchover` on the leader (it answers when the new leader runs).",
        "- **Clients** write a numbered row every 10 ms through the proxy with a 1 s deadline "
        "on every statement (a frozen server never answers) and on every connect during "
        "failover trials (a connect still pending then is abandoned and retried at once); "
        f"during switchovers a connect may take up to {PATIENT_CONNECT_DEADLINE:g} s, so that "
        "a connection the proxy holds is not counted as failed. Failover time: from "
        "the fault to the first write acknowledged on a connection opened after the fault "
        "(session client). Lost writes: acknowledged rows the primary lacks once the cluster "
        "is healthy again (all three nodes back, the old primary rejoined). Host death: agent "
        "and every PostgreSQL process stopped, then killed at once; PostgreSQL crash: every "
        "PostgreSQL process killed, the agent lives on; freeze: SIGSTOP of agent and "
        f"PostgreSQL until the writes resume. No recovery within {FAULT_TIMEOUT:g} s counts "
        "as 'no recovery'.",
        "- **Switchover pause**: the longest time without an acknowledged write from the "
        "request until 2 s after the cluster is healthy again; failed connects: connection "
        "attempts through the proxy that failed (refused, closed or timed out); failed "
        "transactions: inserts that failed on an established connection (a session cut by "
        "the switchover counts once).",
        "- **Agent cost**: user + system CPU time and resident memory of the agent processes "
        "(PostgreSQL excluded) with no client, both systems idle at the same time.",
        "- `bench/side_by_side.py` measures all three parts in one run; `--trials 0`, "
        "`--switchovers 0` or `--cost-seconds 0` skip a part, and each part below names the "
        "run it comes from. This 2-core machine is shared with other jobs: timings are noisy, "
        "compare figures of one run only.",
    ]


def failover_section(results: Results) -> str:
    rounds = max(trial.round for trial in results.failovers)
    lines = ["### Failover", "", run_line(results, f"{rounds} trials per fault and system")]
    lines += ["", *failover_table(results), "", f"![failover times]({PLOT_LINK}/{FAILOVER_PLOT})"]
    return "\n".join([*lines, "", *target_lines(results, failover=True)])


def switchover_section(results: Results) -> str:
    count = sum(1 for trial in results.switchovers if trial.system == SYSTEMS[0])
    lines = ["### Switchover", "", run_line(results, f"{count} switchovers per system"), ""]
    lines += [
        *switchover_table(results),
        "",
        f"![switchover timeline]({PLOT_LINK}/{TIMELINE_PLOT})",
    ]
    return "\n".join([*lines, "", *target_lines(results, failover=False)])


def cost_section(results: Results) -> str:
    lines = ["### Agent cost (idle)", ""]
    lines += [run_line(results, f"{results.cost_seconds:g} s with both systems idle"), ""]
    return "\n".join(lines + cost_table(results.costs))


def plot_failover(results: Results, path: Path) -> None:
    faults = [fault for fault in FAULTS if any(t.fault == fault for t in results.failovers)]
    figure, axes = plt.subplots(1, len(faults), figsize=(4 * len(faults), 4), squeeze=False)
    for axis, fault in zip(axes[0], faults, strict=True):
        for position, system in enumerate(SYSTEMS, start=1):
            chosen = [t for t in results.failovers if t.system == system and t.fault == fault]
            values = [t.seconds for t in chosen if t.seconds is not None]
            if values:
                axis.boxplot([values], positions=[position], widths=0.5)
                spread = [position + 0.15 * ((i % 5) - 2) / 2 for i in range(len(values))]
                axis.scatter(spread, values, color=COLORS[system], alpha=0.7, zorder=3)
        axis.set_xticks(range(1, len(SYSTEMS) + 1), SYSTEMS)
        axis.set_title(fault)
        axis.set_ylim(bottom=0)
        axis.set_ylabel("seconds from fault to first write")
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle("Failover through the proxy (each dot a trial)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def median_trial(trials: list[SwitchoverTrial], system: str) -> SwitchoverTrial | None:
    chosen = sorted(
        (t for t in trials if t.system == system), key=lambda t: t.clients["session"].pause
    )
    return chosen[(len(chosen) - 1) // 2] if chosen else None


def plot_switchover(results: Results, path: Path) -> None:
    figure, axes = plt.subplots(len(SYSTEMS), 1, figsize=(10, 2.2 * len(SYSTEMS)), sharex=True)
    for axis, system in zip(axes, SYSTEMS, strict=True):
        trial = median_trial(results.switchovers, system)
        if trial is None:
            continue
        for row, client in enumerate(CLIENTS):
            timeline = trial.clients[client].timeline
            for acknowledged, color, marker in ((True, "tab:green", "|"), (False, "tab:red", "x")):
                moments = [at for at, ok in timeline if ok is acknowledged]
                axis.scatter(moments, [row] * len(moments), color=color, marker=marker, s=30)
        axis.axvline(0, color="black", linestyle="--", linewidth=1)
        axis.axvline(trial.operation_seconds, color="gray", linestyle=":", linewidth=1)
        axis.set_yticks(range(len(CLIENTS)), ["session", "new conn/txn"])
        axis.set_ylim(-0.6, len(CLIENTS) - 0.4)
        axis.set_title(
            f"{system}: median switchover (session pause {trial.clients['session'].pause:.2f} s)"
        )
    axes[-1].set_xlim(-1.5, None)
    axes[-1].set_xlabel(
        "seconds after the switchover request (dashed; dotted: command returned); "
        "green = write acknowledged, red = failed"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def publish(results: Results, write: bool) -> None:
    """Plots and sections of the parts this run measured; docs/ only when `write`."""
    directory = PLOTS if write else SCRATCH_PLOTS
    directory.mkdir(parents=True, exist_ok=True)
    sections = {SECTION: "\n".join([HEADING, "", *method_lines()])}
    if results.failovers:
        plot_failover(results, directory / FAILOVER_PLOT)
        sections[f"{SECTION}-failover"] = failover_section(results)
    if results.switchovers:
        plot_switchover(results, directory / TIMELINE_PLOT)
        sections[f"{SECTION}-switchover"] = switchover_section(results)
    if results.costs:
        sections[f"{SECTION}-cost"] = cost_section(results)
    print(f"plots in {directory}")
    for name, section in sections.items():
        print(section, end="\n\n")
        if write:
            write_section(name, section)
