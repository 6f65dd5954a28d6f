"""`rhizomectl history`: role changes and finished commands, newest last (pure)."""

from __future__ import annotations

from typing import Any

from rhizome.cli.formatting import NONE, format_duration, format_time, render_table
from rhizome.store.documents import ClusterState, CommandResult, RoleChange

HISTORY_HEADERS = ("TIME (UTC)", "EVENT", "MASTER", "DETAILS")


def history_events(state: ClusterState | None) -> list[RoleChange | CommandResult]:
    """Role changes and command results merged by time, oldest first."""
    if state is None:
        return []
    events: list[RoleChange | CommandResult] = [*state.history, *state.command_results]
    return sorted(events, key=event_time)


def event_time(event: RoleChange | CommandResult) -> float:
    return event.at if isinstance(event, RoleChange) else event.finished_at


def master_change(old: str | None, new: str | None) -> str:
    if old is None and new is None:
        return NONE
    return f"{old or NONE} -> {new or NONE}"


def event_row(event: RoleChange | CommandResult) -> list[str]:
    change = master_change(event.old_master, event.new_master)
    if isinstance(event, RoleChange):
        details = f"generation {event.generation}: {event.reason}"
        return [format_time(event.at), event.kind, change, details]
    pause = f" (writes paused {format_duration(event.write_pause)})" if event.write_pause else ""
    details = f"{event.command}: {event.reason}{pause}"
    return [format_time(event.finished_at), f"{event.kind} {event.outcome}", change, details]


def render_history(events: list[RoleChange | CommandResult]) -> str:
    if not events:
        return "no role change and no finished command yet"
    return render_table(HISTORY_HEADERS, [event_row(event) for event in events])


def history_report(events: list[RoleChange | CommandResult]) -> list[dict[str, Any]]:
    """`rhizomectl history --json`: each event with its type."""
    return [
        {
            "type": "role_change" if isinstance(event, RoleChange) else "command_result",
            **event.model_dump(mode="json"),
        }
        for event in events
    ]
