"""Keepers held while paused (state.paused_holds) in `rhizomectl status` (pure).

A held keeper's PostgreSQL may run unfenced: while its keeper is gone (or
reported by another instance, or not re-armed yet) the sentinel promotes
nobody. Status says so, with the way out.
"""

from __future__ import annotations

from typing import Any

from rhizome.sentinel.decision.pause_holds import hold_blocker
from rhizome.store.documents import ClusterState, KeeperInfo
from rhizome.store.view import ClusterView

CONFIRM = "`rhizomectl failover --to STANDBY --old-master-stopped`"


def live_keepers(view: ClusterView) -> dict[str, KeeperInfo]:
    return {name: stored.document for name, stored in view.keepers.items()}


def hold_condition(document: KeeperInfo | None, instance: str, paused: bool) -> str:
    """What the held keeper reports now, in words."""
    if document is None:
        return (
            "its keeper does not report: its PostgreSQL may still run unfenced; no failover "
            f"until its keeper is back, or until {CONFIRM} once you made sure it is stopped"
        )
    if document.instance_id != instance:
        other = document.instance_id or "without an instance id"
        return f"now reported by another instance ({other}): no failover until {CONFIRM}"
    if paused:
        return "its PostgreSQL outlives its keeper until the resume"
    if document.holding:
        return "its keeper has not re-armed its fencing yet: no failover until it has"
    return "its keeper fences normally again: the hold ends at the sentinel's next decision"


def hold_lines(view: ClusterView, state: ClusterState | None) -> list[tuple[str, str]]:
    """One ("held while paused", text) line per hold."""
    if state is None:
        return []
    keepers = live_keepers(view)
    paused = view.spec is not None and view.spec.document.paused
    return [
        (
            "held while paused",
            f"{name} (instance {instance}): {hold_condition(keepers.get(name), instance, paused)}",
        )
        for name, instance in sorted(state.paused_holds.items())
    ]


def holds_report(view: ClusterView, state: ClusterState | None) -> dict[str, Any]:
    """For `status --json`: each hold's instance and what it blocks (None: nothing)."""
    if state is None:
        return {}
    keepers = live_keepers(view)
    return {
        name: {"instance_id": instance, "blocks_failover": hold_blocker(state, keepers, name)}
        for name, instance in sorted(state.paused_holds.items())
    }
