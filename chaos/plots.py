"""SVG plots of one campaign, written by hand (no plotting dependency).

The `*_svg` functions are pure: plain data in, SVG text out, the same text for the
same input. `write_plots` is the only I/O. Times given to `timeline_svg` are seconds
since the campaign started (`fault_bands` and `write_plots` convert monotonic times).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from chaos.analysis import longest_gap
from chaos.campaign import CampaignResult
from chaos.plan import ALL_KINDS
from chaos.svg import (
    CHARACTER_WIDTH,
    WIDTH,
    Scale,
    Swatch,
    document,
    legend,
    line,
    nice_ceiling,
    number,
    rectangle,
    text,
    x_axis,
    y_axis,
)

TIMELINE_WINDOW = 600.0
"""The part of a run `write_plots` draws by default: its first ten minutes."""

ROW_HEIGHT = 26
SUMMARY_WIDTH = 200
LONGEST_KIND_LABEL = 36
TIMELINE_LEFT = 60
TIMELINE_RIGHT = WIDTH - 20
LABEL_LANES = 3
LANE_HEIGHT = 13
PLOT_HEIGHT = 220

POINT_COLOUR = "#1f77b4"
FAILURE_COLOUR = "#d62728"
ACTIVE_COLOUR = "#f9c4a5"
CONVERGING_COLOUR = "#fde9dc"
JITTER = (0.0, -5.0, 5.0, -2.5, 2.5)
"""Vertical offsets of the dots of one row, in turn, so that equal values stay visible."""


@dataclass(frozen=True)
class FaultBand:
    """One fault on the timeline, in seconds since the campaign started."""

    number: int
    kind: str
    started: float
    healed: float
    converged: float | None

    @property
    def settled(self) -> float:
        return self.converged if self.converged is not None else self.healed


# Data from a campaign result


def unavailability_by_kind(result: CampaignResult) -> dict[str, list[float]]:
    """Per fault kind (in ALL_KINDS order, unknown kinds after), the write unavailability of
    each of its faults in run order, as report.unavailability measures it."""
    successes = sorted(result.inserts.successes)
    per_kind: dict[str, list[float]] = {}
    for record in result.records:
        gap = longest_gap(successes, *record.window)
        per_kind.setdefault(record.fault.kind, []).append(gap)
    rank = {kind: index for index, kind in enumerate(ALL_KINDS)}
    return dict(sorted(per_kind.items(), key=lambda item: rank.get(item[0], len(rank))))


def fault_bands(result: CampaignResult) -> list[FaultBand]:
    def since_start(moment: float) -> float:
        return moment - result.started

    return [
        FaultBand(
            record.fault.number,
            record.fault.kind,
            since_start(record.started),
            since_start(record.healed),
            None if record.converged is None else since_start(record.converged),
        )
        for record in result.records
    ]


def per_second_rates(moments: Iterable[float], start: float, end: float) -> list[float]:
    """Events per second in bins of one second from `start`; moments outside [start, end)
    are left out, and a last partial bin is divided by its own width."""
    if end <= start:
        return []
    counts = [0] * math.ceil(end - start)
    for moment in moments:
        if start <= moment < end:
            counts[min(int(moment - start), len(counts) - 1)] += 1
    last_width = end - start - (len(counts) - 1)
    return [float(count) for count in counts[:-1]] + [counts[-1] / last_width]


# SVG pieces


# Unavailability per fault kind


def unavailability_svg(
    per_kind: Mapping[str, Sequence[float]], title: str = "Write unavailability per fault kind"
) -> str:
    """One row per kind: a dot per fault, the median as a bar, the maximum circled."""
    if not per_kind:
        return document(80, [text(WIDTH / 2, 56, "no faults", "middle")], title)
    longest = max(len(kind) for kind in per_kind)
    left = min(max(80.0, min(longest, LONGEST_KIND_LABEL) * CHARACTER_WIDTH + 20), 260.0)
    top, bottom = 40.0, 40.0 + ROW_HEIGHT * len(per_kind)
    highest = max((max(values) for values in per_kind.values() if values), default=0.0)
    scale = Scale(0.0, nice_ceiling(highest), left, WIDTH - SUMMARY_WIDTH)
    parts = [
        rectangle(0, top + ROW_HEIGHT * index, WIDTH, ROW_HEIGHT, "#f6f6f6")
        for index in range(0, len(per_kind), 2)
    ]
    parts += x_axis(scale, top, bottom, "seconds without an acknowledged insert")
    for index, (kind, values) in enumerate(per_kind.items()):
        parts += kind_row(kind, values, scale, top + ROW_HEIGHT * index + ROW_HEIGHT / 2)
    parts += legend(
        [(dot_swatch, "one fault"), (median_swatch, "median"), (maximum_swatch, "maximum")],
        left,
        bottom + 52,
    )
    return document(bottom + 64, parts, title)


def kind_row(kind: str, values: Sequence[float], scale: Scale, centre: float) -> list[str]:
    shown = kind if len(kind) <= LONGEST_KIND_LABEL else kind[: LONGEST_KIND_LABEL - 1] + "…"
    parts = ['<g class="kind">', text(scale.start - 8, centre + 4, shown, "end")]
    if not values:
        return [
            *parts,
            text(scale.start + 4, centre + 4, "no faults", attributes=' fill="#777"'),
            "</g>",
        ]
    for index, value in enumerate(values):
        parts.append(
            f'<circle class="fault" cx="{number(scale(value))}" '
            f'cy="{number(centre + JITTER[index % len(JITTER)])}" r="3.5" fill="{POINT_COLOUR}" '
            f'fill-opacity="0.55"><title>{value:.2f} s</title></circle>'
        )
    median, worst = statistics.median(values), max(values)
    worst_centre = centre + JITTER[values.index(worst) % len(JITTER)]
    return [
        *parts,
        median_swatch(scale(median), centre),
        maximum_swatch(scale(worst), worst_centre),
        text(
            scale.end + 14, centre + 4, f"n {len(values)}, median {median:.2f}, max {worst:.2f} s"
        ),
        "</g>",
    ]


def dot_swatch(x: float, y: float) -> str:
    return (
        f'<circle cx="{number(x)}" cy="{number(y)}" r="3.5" fill="{POINT_COLOUR}" '
        'fill-opacity="0.55"/>'
    )


def median_swatch(x: float, y: float) -> str:
    return line(x, y - 9, x, y + 9, "black", ' stroke-width="2" class="median"')


def maximum_swatch(x: float, y: float) -> str:
    return (
        f'<circle class="maximum" cx="{number(x)}" cy="{number(y)}" r="6" fill="none" '
        f'stroke="{FAILURE_COLOUR}" stroke-width="1.5"/>'
    )


# The timeline of one run


def timeline_svg(
    bands: Sequence[FaultBand],
    successes: Sequence[float],
    failures: Sequence[float],
    window: tuple[float, float],
    title: str = "Timeline of the run",
) -> str:
    """Faults as bands, acknowledged inserts per second as a line, failed transactions as red
    ticks, over `window` (start, end) in seconds since the campaign started."""
    start, end = window
    if not end > start:
        raise ValueError(f"the window must end after it starts: {window}")
    top = 34.0 + LABEL_LANES * LANE_HEIGHT + 6
    bottom = top + PLOT_HEIGHT
    x_scale = Scale(start, end, TIMELINE_LEFT, TIMELINE_RIGHT)
    rates = per_second_rates(successes, start, end)
    y_scale = Scale(0.0, nice_ceiling(max(rates, default=0.0)), bottom, top)
    visible = [band for band in bands if band.started <= end and band.settled >= start]
    parts = [element for band in visible for element in band_elements(band, x_scale, top, bottom)]
    parts += fault_labels(visible, x_scale, top)
    parts += x_axis(x_scale, top, bottom, "seconds since the campaign started")
    parts += y_axis(y_scale, TIMELINE_LEFT, TIMELINE_RIGHT, "acknowledged inserts per second")
    parts += rate_line(rates, x_scale, y_scale)
    parts += failure_marks(failures, x_scale, bottom)
    parts += legend(
        [
            (band_swatch(ACTIVE_COLOUR), "fault applied"),
            (band_swatch(CONVERGING_COLOUR), "healed, until converged"),
            (rate_swatch, "inserts per second"),
            (failure_swatch, "failed transaction"),
        ],
        TIMELINE_LEFT,
        bottom + 52,
    )
    return document(bottom + 64, parts, title)


def band_elements(band: FaultBand, scale: Scale, top: float, bottom: float) -> list[str]:
    def span(first: float, last: float, fill: str, attributes: str = "") -> str:
        left = scale(max(first, scale.low))
        right = max(scale(min(last, scale.high)), left + 1)
        return rectangle(left, top, right - left, bottom - top, fill, attributes)

    converged = (
        f"converged at {band.converged:.1f} s" if band.converged is not None else "NOT converged"
    )
    parts = [
        '<g class="fault">',
        f"<title>#{band.number} {escape(band.kind)}: "
        f"{band.started:.1f} to {band.healed:.1f} s, {converged}</title>",
        span(band.started, band.healed, ACTIVE_COLOUR),
    ]
    if band.settled > band.healed:
        parts.append(span(band.healed, band.settled, CONVERGING_COLOUR))
    if band.converged is None:
        outline = f' stroke="{FAILURE_COLOUR}" stroke-width="1.5"'
        parts.append(span(band.started, band.healed, "none", outline))
    return [*parts, "</g>"]


def fault_labels(bands: Sequence[FaultBand], scale: Scale, top: float) -> list[str]:
    candidates = [
        (scale(max(band.started, scale.low)), [f"#{band.number} {band.kind}", f"#{band.number}"])
        for band in bands
    ]
    parts = ['<g class="fault-labels">']
    for (x, _), placed in zip(
        candidates, place_labels(candidates, LABEL_LANES, WIDTH), strict=True
    ):
        if placed is not None:
            lane, label = placed
            parts.append(text(x, top - 6 - lane * LANE_HEIGHT, label))
    return [*parts, "</g>"]


def place_labels(
    candidates: Sequence[tuple[float, Sequence[str]]], lanes: int, right_edge: float
) -> list[tuple[int, str] | None]:
    """For each label wanted at pixel x (texts from preferred to shortest), the first text
    with a lane in which it starts after that lane's previous label ends; None if none fits."""
    lane_ends = [-math.inf] * lanes
    placed: list[tuple[int, str] | None] = []
    for x, texts in candidates:
        choice: tuple[int, str] | None = None
        for label in texts:
            label_end = x + len(label) * CHARACTER_WIDTH
            free = [lane for lane, lane_end in enumerate(lane_ends) if lane_end + 4 <= x]
            if free and label_end <= right_edge:
                lane_ends[free[0]] = label_end
                choice = (free[0], label)
                break
        placed.append(choice)
    return placed


def rate_line(rates: Sequence[float], x_scale: Scale, y_scale: Scale) -> list[str]:
    if not rates:
        return []
    points = " ".join(
        f"{number(x_scale(min(x_scale.low + index + 0.5, x_scale.high)))},{number(y_scale(rate))}"
        for index, rate in enumerate(rates)
    )
    return [
        f'<polyline class="rate" points="{points}" fill="none" stroke="{POINT_COLOUR}" '
        'stroke-width="1.2"/>'
    ]


def failure_marks(failures: Iterable[float], scale: Scale, bottom: float) -> list[str]:
    """One red tick per pixel column holding failed transactions (they come in bursts)."""
    columns = sorted(
        {round(scale(moment)) for moment in failures if scale.low <= moment <= scale.high}
    )
    marks = [line(x, bottom - 10, x, bottom, FAILURE_COLOUR, ' class="failure"') for x in columns]
    return ['<g class="failures">', *marks, "</g>"]


def band_swatch(colour: str) -> Swatch:
    return lambda x, y: rectangle(x - 6, y - 5, 12, 10, colour)


def rate_swatch(x: float, y: float) -> str:
    return line(x - 6, y, x + 6, y, POINT_COLOUR, ' stroke-width="1.2"')


def failure_swatch(x: float, y: float) -> str:
    return line(x, y - 5, x, y + 5, FAILURE_COLOUR)


# Files


def write_plots(
    result: CampaignResult, directory: Path, window: tuple[float, float] | None = None
) -> list[Path]:
    """reliability-unavailability-<mode>.svg and reliability-timeline-<mode>.svg in
    `directory` (created); the timeline covers `window`, by default the first ten minutes, and
    its failed transactions are those of both workloads (inserts and bank transfers)."""
    duration = result.finished - result.started
    start, end = window or (0.0, max(1.0, min(duration, TIMELINE_WINDOW)))
    heading = f"{result.mode} mode, seed {result.seed}"
    unavailability = unavailability_svg(
        unavailability_by_kind(result), f"Write unavailability per fault kind ({heading})"
    )
    timeline = timeline_svg(
        fault_bands(result),
        [moment - result.started for moment in result.inserts.successes],
        [moment - result.started for moment in result.inserts.failures + result.bank.failures],
        (start, end),
        f"Timeline ({heading}): {start:.0f} to {end:.0f} s of {duration:.0f} s",
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in (("unavailability", unavailability), ("timeline", timeline)):
        path = directory / f"reliability-{name}-{result.mode}.svg"
        path.write_text(content, encoding="utf-8")
        paths.append(path)
    return paths
