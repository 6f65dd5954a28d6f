"""What rhizomectl says about each keeper, derived from a ClusterView (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from rhizome.spec import ClusterSpec, KeeperSettings
from rhizome.store.documents import ClusterState, KeeperInfo
from rhizome.store.positions import reference_position, standby_lag
from rhizome.store.view import ClusterView, Stored

REMOVAL_SETTING = "removed"
"""The per-keeper spec setting that asks the sentinel to remove a keeper (docs/protocol.md)."""


@dataclass(frozen=True)
class KeeperStatus:
    """One keeper as the operator sees it: assignment, observation and settings."""

    name: str
    assigned_role: str | None
    follow: str | None
    observation: KeeperInfo | None
    synchronous: str | None
    settings: KeeperSettings
    converging: bool
    lag_bytes: int | None = None
    """For a standby: bytes behind the master, reported or computed from positions."""

    @property
    def alive(self) -> bool:
        """Its keeper publishes observations (its lease is alive)."""
        return self.observation is not None

    @property
    def removal_requested(self) -> bool:
        return bool(getattr(self.settings, REMOVAL_SETTING, False))

    def state_words(self) -> list[str]:
        """Short words describing what the keeper observes, e.g. ["primary", "healthy"]."""
        info = self.observation
        if info is None:
            words = ["down"]
        elif not info.running:
            words = ["stopped"]
        else:
            words = [info.role, "healthy" if info.healthy else "unhealthy"]
        if info is not None and info.fenced and self.assigned_role in ("master", "fenced"):
            words.append("fenced")
        if info is not None and info.sealed_lsn is not None:
            words.append("sealed")
        if self.converging:
            words.append("converging")
        if info is not None and info.last_error:
            words.append("error")
        words.extend(self.setting_words())
        return words

    def setting_words(self) -> list[str]:
        words = []
        if self.settings.maintenance:
            words.append("maintenance")
        if self.settings.no_failover:
            words.append("no-failover")
        if self.removal_requested and self.assigned_role != "removed":
            words.append("removal-requested")
        return words


def keeper_names(view: ClusterView) -> list[str]:
    """Every keeper the cluster knows of: assigned, publishing or configured."""
    names = set(view.keepers)
    if view.state is not None:
        names.update(view.state.document.assignments)
    if view.spec is not None:
        names.update(view.spec.document.keepers)
    return sorted(names)


def master_down_reason(state: ClusterState | None, info: KeeperInfo | None) -> str | None:
    """Why the assigned master does not run PostgreSQL; None when it runs (or there is none)."""
    if state is None or state.master is None:
        return None
    if info is None:
        return f"{state.master}'s keeper does not report"
    if not info.running:
        error = f": {info.last_error}" if info.last_error else ""
        return f"PostgreSQL of {state.master} is not running{error}"
    return None


def lag_reference(state: ClusterState, observations: dict[str, KeeperInfo]) -> int | None:
    """What standbys' lag is measured against: the running master's position; when the
    master is down, the last position known of it (its final report, the state's
    master_flush_lsn), never the standbys' own positions (that would show them caught up)."""
    master = observations.get(state.master) if state.master is not None else None
    if state.master is None or master_down_reason(state, master) is None:
        return reference_position(state, observations)
    known = [state.master_flush_lsn, master.flush_lsn if master else None]
    positions = [position for position in known if position is not None]
    if positions:
        return max(positions)
    return reference_position(state, observations)


def keeper_statuses(view: ClusterView) -> list[KeeperStatus]:
    state = view.state.document if view.state else None
    spec = view.spec.document if view.spec else None
    observations = {name: stored.document for name, stored in view.keepers.items()}
    reference = lag_reference(state, observations) if state else None
    master = observations.get(state.master) if state and state.master else None
    master_down = master_down_reason(state, master) is not None
    return [
        keeper_status(name, state, spec, view.keepers.get(name), reference, master_down)
        for name in keeper_names(view)
    ]


def keeper_status(
    name: str,
    state: ClusterState | None,
    spec: ClusterSpec | None,
    stored: Stored[KeeperInfo] | None,
    reference: int | None = None,
    master_down: bool = False,
) -> KeeperStatus:
    """One keeper; with the master down, a standby's own lag report (against an upstream
    that is gone) gives way to the distance from the master's last known position."""
    observation = stored.document if stored else None
    lag = None
    if observation is not None and observation.role == "standby":
        measured = observation.with_changes(lag_bytes=None) if master_down else observation
        lag = standby_lag(measured, reference)
    assignment = state.assignment_of(name) if state else None
    converging = (
        state is not None
        and assignment is not None
        and observation is not None
        and observation.acknowledged_state_generation < state.generation
    )
    return KeeperStatus(
        name=name,
        assigned_role=assignment.role if assignment else None,
        follow=assignment.follow if assignment else None,
        observation=observation,
        synchronous=synchronous_label(name, state),
        settings=spec.keeper_settings(name) if spec else KeeperSettings(),
        converging=converging,
        lag_bytes=lag,
    )


def synchronous_label(name: str, state: ClusterState | None) -> str | None:
    """sync / joining / leaving / async for an assigned standby; None otherwise."""
    if state is None:
        return None
    assignment = state.assignment_of(name)
    if assignment is None or assignment.role != "standby":
        return None
    requested = name in state.synchronous_standbys.requested
    confirmed = name in state.synchronous_standbys.confirmed
    if requested and confirmed:
        return "sync"
    if requested:
        return "joining"
    if confirmed:
        return "leaving"
    return "async"
