"""docs/reliability.md from one campaign's result (the text is a pure function of it)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos.analysis import DualWritable, count_between, dual_writable, longest_gap, summary
from chaos.campaign import CONVERGENCE_BOUND, EXPECTED_TOTAL, CampaignResult, FaultRecord
from chaos.losses import LEAD_SECONDS, describe, explaining_record, group_losses
from chaos.plan import ALL_KINDS, OPERATIONS_DURING
from chaos.plots import write_plots

NOT_COVERED = [
    "clock steps on the sentinel leader's host, disk full on a standby",
]


def unavailability(result: CampaignResult, record: FaultRecord) -> float:
    return longest_gap(sorted(result.inserts.successes), *record.window)


def kind_rows(result: CampaignResult) -> list[str]:
    rows = [
        "| fault kind | count | converged | write unavailability median / p99 / max (s) "
        "| failed transactions | failed connections |",
        "|---|---|---|---|---|---|",
    ]
    failures = result.inserts.failures + result.bank.failures
    connects = result.inserts.connect_failures + result.bank.connect_failures
    for kind in ALL_KINDS:
        records = [record for record in result.records if record.fault.kind == kind]
        if not records:
            continue
        median, p99, worst = summary([unavailability(result, record) for record in records])
        failed = sum(count_between(failures, *record.window) for record in records)
        refused = sum(count_between(connects, *record.window) for record in records)
        converged = sum(1 for record in records if record.converged is not None)
        rows.append(
            f"| {kind} | {len(records)} | {converged}/{len(records)} | "
            f"{median:.2f} / {p99:.2f} / {worst:.2f} | {failed} | {refused} |"
        )
    return rows


def interval_lines(result: CampaignResult, intervals: Iterable[DualWritable]) -> list[str]:
    def wall(moment: float) -> str:
        return time.strftime(
            "%H:%M:%S", time.localtime(result.wall_started + moment - result.started)
        )

    def cause(moment: float) -> str:
        record = explaining_record(moment, result.records)
        return "no fault" if record is None else f"during {record.fault.describe()}"

    lines = [
        f"  - {wall(i.start)} to {wall(i.end)} ({i.end - i.start:.3f} s, {cause(i.start)}): "
        f"{i.first.target} → {i.first.server}, {i.second.target} → {i.second.server}"
        for i in intervals
    ]
    return lines or ["  - none"]


def fault_lines(result: CampaignResult) -> list[str]:
    lines = []
    for record in result.records:
        end = f"{record.converged - record.healed:.1f} s" if record.converged else "NOT converged"
        notes = f"; {' | '.join(record.notes)}" if record.notes else ""
        problems = f"; problems: {'; '.join(record.problems)}" if record.problems else ""
        lines.append(
            f"| {record.fault.describe()} | {record.node} | "
            f"{unavailability(result, record):.2f} | {end}{problems}{notes} |"
        )
    return lines


@dataclass(frozen=True)
class Section:
    """One mode's campaign in the report: its result, the command that ran it, and the
    plots drawn from it (paths relative to the report)."""

    result: CampaignResult
    command: str
    images: tuple[str, ...] = ()


METHOD = [
    "## Method",
    "",
    "Three nodes, each in its own network namespace on a bridge the campaign creates "
    "(10.250.x.0/24, addresses only inside those namespaces): an etcd member, a keeper "
    "with its PostgreSQL (as the postgres user), a sentinel and a proxy, with the "
    "configuration files the agents read when deployed; default timings. Faults are "
    "drawn from a seed (`chaos/plan.py`), every kind once per shuffled round; each is "
    "applied to the master or a standby as published when it starts, lasts its drawn "
    "duration (sometimes with an operator's operation 1 s in: a switchover, a standby's "
    "maintenance ended at healing, or a spec change of a restart-only parameter followed "
    "by a standby's keeper stop and start, its new value checked after convergence), "
    "is healed, and the cluster must then converge (one master, every "
    "standby streaming on its timeline, every proxy acknowledging) within "
    f"{CONVERGENCE_BOUND:.0f} s. Workloads run through the three proxies' read-write ports "
    "with failover between them: unique inserts (lost = acknowledged - present at the end) "
    "and bank transfers in serializable transactions (the total must stay "
    f"{EXPECTED_TOTAL}). A probe asks every PostgreSQL directly and through every proxy, "
    "4 times a second, which server answers and whether a write into a probe table "
    "commits (`synchronous_commit = local`: it asks whether the server accepts writes); "
    "two servers whose runs of acknowledged probe writes overlap form a dual-writable "
    "interval, reported with the fault it happened in. Write unavailability of a fault is "
    "the longest time without an acknowledged insert overlapping the fault until "
    "convergence. In asynchronous mode every lost write is attributed to the fault that "
    f"explains it (acknowledged at most {LEAD_SECONDS:.0f} s before it started, or while it "
    "lasted) and its WAL (lost writes x the WAL bytes of one insert, measured on the "
    "cluster at the end) is compared with the spec's `max_standby_lag_bytes`, the most a "
    "promoted standby may lag.",
    "",
]
MODE_TITLES = {"sync": "Synchronous mode", "async": "Asynchronous mode"}


def render(sections: Sequence[Section]) -> str:
    """The whole document: the method once, then each mode's results."""
    parts = [
        "# Reliability: the fault-injection campaign",
        "",
        "Generated by `chaos/` (`make chaos`); rerun to regenerate. Every number below is "
        "from the runs described here, nothing is carried over from earlier runs.",
        "",
        *METHOD,
    ]
    for section in sections:
        parts += mode_section(section)
    parts += ["## Not covered yet", "", *(f"- {item}" for item in NOT_COVERED), ""]
    return "\n".join(parts)


def mode_section(section: Section) -> list[str]:
    result = section.result
    minutes = (result.finished - result.started) / 60
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"## {MODE_TITLES.get(result.mode, result.mode)}",
        "",
        f"- command: `{section.command}`",
        f"- seed {result.seed}, mode {result.mode}, {len(result.records)} faults, "
        f"{minutes:.1f} minutes; machine: {os.cpu_count()} cores, load average when the report "
        f"was written {load}",
        "",
        "### Results",
        "",
        *result_lines(result),
        "",
        *(f"![{Path(image).stem}]({image})" for image in section.images),
        "",
        "### Per fault kind",
        "",
        *kind_rows(result),
        "",
        "### Every fault",
        "",
        "<details><summary>one row per fault</summary>",
        "",
        "| fault | node | write unavailability (s) | converged after healing |",
        "|---|---|---|---|",
        *fault_lines(result),
        "",
        "</details>",
        "",
    ]


def result_lines(result: CampaignResult) -> list[str]:
    direct = dual_writable(s for s in result.samples if s.via == "direct")
    proxied = dual_writable(s for s in result.samples if s.via == "proxy")
    failures = [record for record in result.records if record.converged is None]
    return [
        f"- acknowledged inserts: {len(result.inserts.acknowledged)}; **lost: {len(result.lost)}**",
        *loss_lines(result),
        f"- bank total at the end: {result.bank_total} (expected {EXPECTED_TOTAL}); "
        f"transfers committed: {len(result.bank.successes)}",
        f"- dual-writable intervals through proxies: **{len(proxied)}**",
        *interval_lines(result, proxied),
        f"- dual-writable intervals direct (not via a proxy): **{len(direct)}**",
        *interval_lines(result, direct),
        f"- convergence failures: **{len(failures)}** of {len(result.records)}",
        operation_line(result),
    ]


def operation_line(result: CampaignResult) -> str:
    """How many operations ran during faults, by operation, and the findings noted."""
    operations = [r.fault.operation_during for r in result.records if r.fault.operation_during]
    counts = ", ".join(f"{name} {operations.count(name)}" for name in OPERATIONS_DURING)
    findings = sum(1 for r in result.records for note in r.notes if note.startswith("FINDING"))
    return (f"- operations during faults: {len(operations)} ({counts}); "
            f"findings noted on faults: **{findings}**")  # fmt: skip


def loss_lines(result: CampaignResult) -> list[str]:
    groups = group_losses(result.lost, result.inserts.acknowledged, result.records)
    per_insert = result.wal_bytes_per_insert
    header = f"  - one insert writes {per_insert:.0f} bytes of WAL (measured at the end)"
    lines = [f"  - {describe(group, per_insert, result.lag_bound_bytes)}" for group in groups]
    return [header, *lines] if lines else []


def publish(runs: Sequence[tuple[CampaignResult, str]], path: Path) -> None:
    """Write the report at `path` and each run's plots beside it, in `<path stem>/`."""
    sections = []
    for result, command in runs:
        images = write_plots(result, path.parent / path.stem)
        relative = tuple(str(image.relative_to(path.parent)) for image in images)
        sections.append(Section(result, command, relative))
    path.write_text(render(sections))
