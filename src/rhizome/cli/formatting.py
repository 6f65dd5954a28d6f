"""Small text helpers shared by the human-readable outputs (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

NONE = "-"
BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, headers first."""
    all_rows = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[column]) for row in all_rows) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in all_rows
    )


def format_bytes(count: int | None) -> str:
    """A byte count with a binary unit: 0 B, 512 B, 1.5 MiB."""
    if count is None:
        return NONE
    value = float(count)
    for unit in BYTE_UNITS:
        if value < 1024 or unit == BYTE_UNITS[-1]:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_time(unix_time: float) -> str:
    """A UTC timestamp to the second: 2024-05-01 12:00:03."""
    return datetime.fromtimestamp(unix_time, UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float) -> str:
    """A short duration: 0.8 s, 42 s, 3 min 5 s, 2 h 10 min."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def format_names(names: Iterable[str]) -> str:
    """Comma-separated names, or "-" when there are none."""
    listed = ", ".join(names)
    return listed or NONE


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
