"""`rhizomectl status`: the cluster at one store revision, as a table or JSON (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rhizome.cli.formatting import (
    NONE,
    format_bytes,
    format_duration,
    format_names,
    render_table,
    yes_no,
)
from rhizome.cli.keeper_status import (
    KeeperStatus,
    keeper_statuses,
    lag_reference,
    master_down_reason,
)
from rhizome.cli.paused_holds import hold_lines, holds_report
from rhizome.keeper.timelines import format_lsn
from rhizome.store.documents import ClusterState, KeeperInfo, Operation
from rhizome.store.view import ClusterView

TABLE_HEADERS = ("KEEPER", "ROLE", "STATE", "TIMELINE", "LAG", "SYNC", "PENDING RESTART")


def render_status(
    view: ClusterView, cluster: str, now: float, extra: Sequence[tuple[str, str]] = ()
) -> str:
    """The header (with `extra` lines, e.g. the last backup), the keeper table, last errors."""
    header = [*header_lines(view, cluster, now), *extra]
    width = max(len(label) for label, _ in header) + 1
    lines = [f"{label + ':':<{width}} {value}" for label, value in header]
    statuses = keeper_statuses(view)
    lines.append("")
    if statuses:
        lines.append(render_table(TABLE_HEADERS, [keeper_row(status) for status in statuses]))
    else:
        lines.append("no keeper has reported yet")
    errors = [status for status in statuses if status.observation and status.observation.last_error]
    for status in errors:
        assert status.observation is not None
        lines.append(f"{status.name}: last error: {status.observation.last_error}")
    return "\n".join(lines)


def header_lines(view: ClusterView, cluster: str, now: float) -> list[tuple[str, str]]:
    """(label, value) pairs describing the cluster as a whole."""
    state = view.state.document if view.state else None
    spec = view.spec.document if view.spec else None
    lines = [
        ("cluster", f"{cluster} (store revision {view.revision})"),
        ("master", master_text(view, state)),
        *master_down_lines(view, state),
        ("proxies", proxies_text(view, state)),
        ("synchronous", synchronous_text(view, state)),
        ("paused", yes_no(spec.paused) if spec else NONE),
        *hold_lines(view, state),
        ("operation", operation_text(state.operation, now) if state and state.operation else NONE),
    ]
    if state is not None and state.no_promotion_reason:
        lines.append(("no promotion", state.no_promotion_reason))
    if state is not None and state.successor is not None:
        successor = f"handed over to cluster {state.successor}: its proxies follow it"
        lines.append(("successor", successor))
    lines.append(("sentinels", sentinels_text(view)))
    for name, command in sorted(view.commands.items()):
        target = f" to {command.document.target}" if command.document.target else ""
        lines.append(("pending command", f"{name} ({command.document.kind}{target})"))
    if view.spec is None and not view.problems:
        lines.append(("spec", "none: run `rhizomectl init` to create it"))
    lines.extend(("store problem", str(problem)) for problem in view.problems)
    return lines


def master_text(view: ClusterView, state: ClusterState | None) -> str:
    if state is None:
        return "none (no sentinel has published a state yet)"
    if state.master is None:
        reason = "not initialised yet" if not state.initialized else "no master now"
        return f"none ({reason}; state generation {state.generation})"
    timeline = f"timeline {state.master_timeline}, " if state.master_timeline else ""
    return f"{state.master} ({timeline}state generation {state.generation})"


def master_info(view: ClusterView, state: ClusterState | None) -> KeeperInfo | None:
    if state is None or state.master is None:
        return None
    stored = view.keepers.get(state.master)
    return stored.document if stored is not None else None


def master_down_lines(view: ClusterView, state: ClusterState | None) -> list[tuple[str, str]]:
    """With the master down: why, and what standbys' lag is measured against."""
    reason = master_down_reason(state, master_info(view, state))
    if state is None or reason is None:
        return []
    observations = {name: stored.document for name, stored in view.keepers.items()}
    reference = lag_reference(state, observations)
    where = f"{format_lsn(reference)}, " if reference is not None else ""
    return [
        ("master down", reason),
        ("lag against", f"{where}the last position known of master {state.master}"),
    ]


def route_text(view: ClusterView, state: ClusterState) -> str:
    """Where the read-write route goes; held when its target does not run PostgreSQL."""
    target = state.proxy_target.master
    if target is None:
        return "route nowhere (holding clients)"
    if target == state.master:
        reason = master_down_reason(state, master_info(view, state))
    else:
        stored = view.keepers.get(target)
        reason = None if stored is not None and stored.document.running else f"{target} is down"
    if reason is None:
        return f"route to {target}"
    return f"route held: its target {target} is not running ({reason}); clients wait or time out"


def proxies_text(view: ClusterView, state: ClusterState | None) -> str:
    if state is None:
        return f"{len(view.proxies)} running"
    target = state.proxy_target
    route = route_text(view, state)
    acknowledged = sum(
        1
        for proxy in view.proxies.values()
        if proxy.document.acknowledged_proxy_generation >= target.proxy_generation
    )
    return (
        f"{route}, proxy generation {target.proxy_generation}; "
        f"{acknowledged} of {len(view.proxies)} running proxies acknowledged"
    )


def synchronous_text(view: ClusterView, state: ClusterState | None) -> str:
    enabled = view.spec is not None and view.spec.document.synchronous_replication.enabled
    standbys = state.synchronous_standbys if state else None
    if standbys is None or not (standbys.requested or standbys.confirmed):
        return "on, no synchronous standby yet" if enabled else "off"
    return (
        f"{'on' if enabled else 'off'}, requested {format_names(standbys.requested)}; "
        f"confirmed {format_names(standbys.confirmed)}"
    )


def operation_text(operation: Operation, now: float) -> str:
    change = f" {operation.previous_master or NONE} -> {operation.target or '?'}"
    command = f", command {operation.command}" if operation.command else ""
    elapsed = format_duration(now - operation.phase_started_at)
    abandoned = ""
    if operation.abandoned_targets:
        abandoned = f", promotion abandoned: {', '.join(operation.abandoned_targets)}"
    return f"{operation.kind}{change}, phase {operation.phase} for {elapsed}{command}{abandoned}"


def sentinels_text(view: ClusterView) -> str:
    running = f"{len(view.sentinels)} running"
    if view.leader is None:
        return f"{running}, no leader elected"
    return f"{running}, leader {view.leader.document.sentinel_id}"


def keeper_row(status: KeeperStatus) -> list[str]:
    info = status.observation
    return [
        status.name,
        role_text(status),
        ", ".join(status.state_words()),
        str(info.timeline) if info and info.timeline else NONE,
        format_bytes(status.lag_bytes) if status.lag_bytes is not None else NONE,
        status.synchronous or NONE,
        format_names(info.pending_restart) if info else NONE,
    ]


def role_text(status: KeeperStatus) -> str:
    if status.assigned_role is None:
        return "unassigned"
    if status.assigned_role == "standby":
        return f"standby of {status.follow}"
    return status.assigned_role


def status_report(view: ClusterView, cluster: str) -> dict[str, Any]:
    """The machine-readable status (`rhizomectl status --json`)."""
    state = view.state.document if view.state else None
    spec = view.spec.document if view.spec else None
    return {
        "cluster": cluster,
        "store_revision": view.revision,
        "spec_revision": view.spec.mod_revision if view.spec else None,
        "paused": spec.paused if spec else None,
        "state": state_report(state),
        "master_down": master_down_reason(state, master_info(view, state)),
        "paused_holds": holds_report(view, state),
        "sentinel_leader": view.leader.document.sentinel_id if view.leader else None,
        "sentinels": sorted(view.sentinels),
        "proxies": {
            name: proxy.document.model_dump(mode="json")
            for name, proxy in sorted(view.proxies.items())
        },
        "pending_commands": {
            name: command.document.model_dump(mode="json")
            for name, command in sorted(view.commands.items())
        },
        "keepers": [keeper_report(status) for status in keeper_statuses(view)],
        "problems": [{"key": problem.key, "problem": problem.problem} for problem in view.problems],
    }


def state_report(state: ClusterState | None) -> dict[str, Any] | None:
    """The state's topology fields (history is left to `rhizomectl history --json`)."""
    if state is None:
        return None
    return state.model_dump(mode="json", exclude={"history", "command_results", "assignments"})


def keeper_report(status: KeeperStatus) -> dict[str, Any]:
    info = status.observation
    return {
        "name": status.name,
        "assigned_role": status.assigned_role,
        "follow": status.follow,
        "alive": status.alive,
        "state": status.state_words(),
        "synchronous": status.synchronous,
        "converging": status.converging,
        "settings": status.settings.model_dump(mode="json"),
        "observation": info.model_dump(mode="json") if info else None,
    }
