"""Pure analysis of what the campaign recorded: dual-writable intervals, unavailability."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from chaos.probe import ProbeSample


@dataclass(frozen=True)
class WritableRun:
    """Consecutive successful probe writes of one target, all on one server."""

    target: str
    server: str
    first: float
    last: float


@dataclass(frozen=True)
class DualWritable:
    """Two servers both acknowledged probe writes during [start, end]."""

    start: float
    end: float
    first: WritableRun
    second: WritableRun


def writable_runs(samples: Iterable[ProbeSample]) -> list[WritableRun]:
    """Per target, the runs of successful writes (a failed sample or another server ends a run)."""
    by_target: dict[str, list[ProbeSample]] = {}
    for sample in sorted(samples, key=lambda sample: sample.started):
        by_target.setdefault(sample.target, []).append(sample)
    runs: list[WritableRun] = []
    for target, ordered in by_target.items():
        current: WritableRun | None = None
        for sample in ordered:
            if sample.wrote and sample.server is not None:
                if current is not None and current.server == sample.server:
                    current = WritableRun(target, sample.server, current.first, sample.finished)
                    continue
                if current is not None:
                    runs.append(current)
                current = WritableRun(target, sample.server, sample.finished, sample.finished)
            elif current is not None:
                runs.append(current)
                current = None
        if current is not None:
            runs.append(current)
    return runs


def dual_writable(samples: Iterable[ProbeSample]) -> list[DualWritable]:
    """Intervals in which runs on two different servers overlap (write acks interleave)."""
    runs = writable_runs(samples)
    found = []
    for index, first in enumerate(runs):
        for second in runs[index + 1 :]:
            if first.server == second.server:
                continue
            start, end = max(first.first, second.first), min(first.last, second.last)
            if start <= end:
                found.append(DualWritable(start, end, first, second))
    return sorted(found, key=lambda interval: interval.start)


def longest_gap(success_times: Sequence[float], start: float, end: float) -> float:
    """The longest time without a success that overlaps [start, end] (sorted input)."""
    before = [moment for moment in success_times if moment < start]
    inside = [moment for moment in success_times if start <= moment <= end]
    after = [moment for moment in success_times if moment > end]
    points = ([before[-1]] if before else [start]) + inside + ([after[0]] if after else [end])
    return max((b - a for a, b in pairwise(points)), default=end - start)


def count_between(moments: Iterable[float], start: float, end: float) -> int:
    return sum(1 for moment in moments if start <= moment <= end)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in (0, 1]) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, p99, max) of a non-empty sequence."""
    return statistics.median(values), percentile(values, 0.99), max(values)
