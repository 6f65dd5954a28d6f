"""What the decision remembers between calls, kept in the state because it is pure.

None of these fields changes the topology: updating them alone keeps the
generation (keepers and proxies have nothing to do).
"""

from __future__ import annotations

from rhizome.sentinel.decision.candidates import record_step
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.pause_holds import update_pause_holds
from rhizome.store.state import ClusterState

BOOKKEEPING_FIELDS = frozenset(
    {
        "no_promotion_reason",
        "history",
        "command_results",
        "system_identifier",
        "master_flush_lsn",
        "master_unhealthy_since",
        "missing_keepers_since",
        "paused_holds",
    }
)
"""State fields whose change alone does not increase the generation."""


TIMER_FIELDS = frozenset({"started_at", "phase_started_at"})
"""Operation fields that are timers: a change of them alone is no topology change."""


def update_memory(progress: Progress) -> None:
    """Refresh every remembered observation from the current one."""
    if progress.observation.rearm_timers:
        rearm_timers(progress)
    track_missing_keepers(progress)
    track_master_health(progress)
    record_master_position(progress)
    record_system_identifier(progress)
    update_pause_holds(progress)


def rearm_timers(progress: Progress) -> None:
    """Restart every timer of the state at `now` (a new leader: another host's clock)."""
    state = progress.state
    now = progress.now
    changes: dict[str, object] = {
        "missing_keepers_since": dict.fromkeys(state.missing_keepers_since, now),
    }
    if state.master_unhealthy_since is not None:
        changes["master_unhealthy_since"] = now
    if state.operation is not None:
        changes["operation"] = state.operation.with_changes(started_at=now, phase_started_at=now)
    progress.change(**changes)


def without_timers(state: ClusterState) -> ClusterState:
    """`state` with its operation's timers cleared, to compare topologies."""
    if state.operation is None:
        return state
    return state.with_changes(
        operation=state.operation.with_changes(**dict.fromkeys(TIMER_FIELDS, 0.0))
    )


def track_missing_keepers(progress: Progress) -> None:
    """Since when each assigned keeper (not removed) has had no live document."""
    state = progress.state
    missing = {
        name: state.missing_keepers_since.get(name, progress.now)
        for name, assignment in sorted(state.assignments.items())
        if assignment.role != "removed" and progress.keeper(name) is None
    }
    if missing != state.missing_keepers_since:
        progress.change(missing_keepers_since=missing)


def track_master_health(progress: Progress) -> None:
    """Since when the master's keeper has reported PostgreSQL down or unhealthy."""
    state = progress.state
    master = progress.keeper(state.master)
    unhealthy = master is not None and (not master.running or not master.healthy)
    since = (state.master_unhealthy_since or progress.now) if unhealthy else None
    if since != state.master_unhealthy_since:
        progress.change(master_unhealthy_since=since)


def record_master_position(progress: Progress) -> None:
    """Record the master's flush position once it moved by a recording step."""
    state = progress.state
    if state.operation is not None:
        return
    master = progress.keeper(state.master)
    if master is None or not master.accepts_writes or master.flush_lsn is None:
        return
    recorded = state.master_flush_lsn
    position = master.flush_lsn
    if recorded is None or position < recorded or position > recorded + record_step(progress.spec):
        progress.change(master_flush_lsn=position)


def record_system_identifier(progress: Progress) -> None:
    """The database the cluster holds, from its master, once it is initialised."""
    state = progress.state
    if not state.initialized or state.system_identifier is not None:
        return
    master = progress.keeper(state.master)
    if master is not None and master.accepts_writes and master.system_identifier is not None:
        progress.change(system_identifier=master.system_identifier)
