"""WAL positions, timeline history files and divergence (pure functions).

A standby may follow an upstream on another timeline only if its own history
is a prefix of the upstream's: its timeline must appear in the upstream's
history, and everything it holds must lie before the point where the
upstream left that timeline. Otherwise it diverged (DESIGN §3.5) and must be
rewound or cloned again before it may start.
"""

from __future__ import annotations

from dataclasses import dataclass


def parse_lsn(text: str) -> int:
    """'16/B374D848' → integer position; raises ValueError on anything else."""
    high, separator, low = text.strip().partition("/")
    if not separator:
        raise ValueError(f"{text!r} is not a WAL position")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class TimelineSwitch:
    """One history entry: `timeline` ended at `switchpoint` (where the next one starts)."""

    timeline: int
    switchpoint: int


def parse_history(text: str) -> tuple[TimelineSwitch, ...]:
    """The entries of a timeline history file (comments and blank lines skipped)."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2:
            raise ValueError(f"malformed timeline history line {line!r}")
        entries.append(TimelineSwitch(int(fields[0]), parse_lsn(fields[1])))
    return tuple(entries)


def history_file_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


def timeline_reached(
    timeline: int, history: tuple[TimelineSwitch, ...], position: int, *, holds_its_wal: bool
) -> bool:
    """Whether WAL held up to `position` lies on `timeline`, given its history.

    A standby learns of a new timeline from its history file (fetched into
    pg_wal when it starts following it); it is on that timeline once it holds
    WAL at or past the point where the parent timeline ended AND some of that
    WAL is the new timeline's own (`holds_its_wal`: a segment file of the
    timeline in pg_wal). A standby that received more of the parent timeline
    than the new timeline's first master had also holds WAL past the switch
    point and the fetched history file, but none of the new timeline's WAL:
    it diverged, and PostgreSQL refuses to follow ("forked off ... before
    current recovery point").
    """
    if timeline <= 1:
        return True
    return holds_its_wal and bool(history) and position >= history[-1].switchpoint


@dataclass(frozen=True)
class LocalHistory:
    """Where the local data stands: its timeline and the furthest WAL it may hold.

    `end` is None when unknown (e.g. after a crash): then it counts as diverged
    from any other timeline.
    """

    timeline: int
    end: int | None


def diverged(
    local: LocalHistory, upstream_timeline: int, upstream_history: tuple[TimelineSwitch, ...]
) -> bool:
    """Whether the local data cannot simply follow an upstream on `upstream_timeline`."""
    if local.timeline == upstream_timeline:
        return False
    if local.timeline > upstream_timeline or local.end is None:
        return True
    for entry in upstream_history:
        if entry.timeline == local.timeline:
            return local.end >= entry.switchpoint
    return True
