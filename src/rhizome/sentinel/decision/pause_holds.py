"""Pause holds: a PostgreSQL left running unfenced while the cluster was paused.

While `spec.paused` is true, a master keeper that dies leaves its PostgreSQL
running (its guard holds it, unfenced, until a keeper comes back): a pause is
for manual work, and stopping the database then is what the operator did
not ask for. The keeper reports `holding: true` while that is so. Its lease
then expires like any other, so after the resume the sentinel would see a
master whose keeper is gone, take it for dead and fenced, and promote a
standby while the old PostgreSQL may still accept writes.

So the leader records the holds in `state.paused_holds` (name -> the
instance_id its keeper reported):

- while paused, the assigned master (its PostgreSQL is the one that may be
  written to; a standby cannot be, and nobody is promoted while paused);
- at any time, any keeper reporting `holding` with a PostgreSQL that may
  accept writes (e.g. an old master not yet fenced when the pause came).

A keeper without an instance_id predates holding (it always fences when it
dies) and is not recorded. While paused a hold never ends (the keeper may
die at any moment). After the resume it ends when the same instance reports
`holding: false` (its keeper is back and fences normally again), or when a
failover command confirms the old master stopped (`old_master_stopped`).
A hold whose instance is not seen reporting `holding: false` blocks every
failover and every promotion (fencing.promotion_blockers). Ending a hold is
the only way past it: never two writable primaries.

Recording a hold is bookkeeping, not a topology change (no new generation),
and it is the one thing the leader writes while the cluster is paused.
"""

from __future__ import annotations

from collections.abc import Mapping

from rhizome.sentinel.decision.model import Progress
from rhizome.store.documents import Command, KeeperInfo
from rhizome.store.state import ClusterState

HOLD_FIX = (
    "start its keeper, or confirm it is stopped with "
    "`rhizomectl failover --to STANDBY --old-master-stopped`"
)


def holds_to_record(
    state: ClusterState, keepers: Mapping[str, KeeperInfo], paused: bool
) -> dict[str, str]:
    """Keepers whose PostgreSQL may be left running unfenced now, by instance_id."""
    names = {
        name
        for name, document in keepers.items()
        if document.holding and document.fencing_problem is not None
    }
    if paused and state.master is not None:
        names.add(state.master)
    recorded = {}
    for name in sorted(names):
        document = keepers.get(name)
        if document is not None and document.instance_id is not None:
            recorded[name] = document.instance_id
    return recorded


def released_holds(
    holds: Mapping[str, str], keepers: Mapping[str, KeeperInfo], paused: bool
) -> list[str]:
    """Holds whose instance reports that it fences normally again (never while paused)."""
    if paused:
        return []
    released = []
    for name, instance in sorted(holds.items()):
        document = keepers.get(name)
        if document is not None and document.instance_id == instance and not document.holding:
            released.append(name)
    return released


def next_pause_holds(
    state: ClusterState, keepers: Mapping[str, KeeperInfo], paused: bool
) -> dict[str, str]:
    """The holds after this observation: ended ones dropped, new ones added.

    A name already held keeps the instance recorded first: another instance
    reporting under that name proves nothing about the held PostgreSQL.
    """
    holds = dict(state.paused_holds)
    for name in released_holds(holds, keepers, paused):
        del holds[name]
    for name, instance in holds_to_record(state, keepers, paused).items():
        holds.setdefault(name, instance)
    return holds


def with_pause_holds(
    state: ClusterState, keepers: Mapping[str, KeeperInfo], paused: bool
) -> ClusterState:
    """`state` with its holds brought up to date; `state` itself when unchanged."""
    holds = next_pause_holds(state, keepers, paused)
    if holds == state.paused_holds:
        return state
    return state.with_changes(paused_holds=holds)


def hold_blocker(state: ClusterState, keepers: Mapping[str, KeeperInfo], name: str) -> str | None:
    """Why keeper `name`'s held PostgreSQL may still run unfenced; None when not held."""
    instance = state.paused_holds.get(name)
    if instance is None:
        return None
    document = keepers.get(name)
    if document is None:
        why = f"its keeper (instance {instance}) does not report"
    elif document.instance_id != instance:
        other = document.instance_id or "without an instance id"
        why = f"its name is reported by another instance ({other}) than the held one ({instance})"
    elif document.holding:
        why = f"its keeper (instance {instance}) has not re-armed its fencing yet"
    else:
        return None
    operation = state.operation
    masters = (state.master, operation.previous_master if operation else None)
    role = "master" if name in masters else "keeper"
    return (
        f"{role} {name} was held while paused: its PostgreSQL may still run unfenced "
        f"({why}); {HOLD_FIX}"
    )


def hold_blockers(state: ClusterState, keepers: Mapping[str, KeeperInfo]) -> list[str]:
    """Every held PostgreSQL that may still run unfenced: nobody may be promoted."""
    blockers = [hold_blocker(state, keepers, name) for name in sorted(state.paused_holds)]
    return [blocker for blocker in blockers if blocker is not None]


def progress_hold_blockers(progress: Progress) -> list[str]:
    """hold_blockers() on the working state and the live keepers."""
    return hold_blockers(progress.state, progress.observation.keepers)


def update_pause_holds(progress: Progress) -> None:
    """Record new holds and end those whose keeper fences normally again."""
    state = progress.state
    updated = with_pause_holds(state, progress.observation.keepers, progress.spec.paused)
    if updated is state:
        return
    for name in sorted(set(state.paused_holds) - set(updated.paused_holds)):
        progress.note(f"pause hold of {name} ended: its keeper fences normally again")
    for name in sorted(set(updated.paused_holds) - set(state.paused_holds)):
        progress.note(f"{name} held: its PostgreSQL would outlive its keeper (pause rules)")
    progress.change(paused_holds=updated.paused_holds)


def command_hold_refusal(progress: Progress, command: Command) -> str | None:
    """Why a failover command cannot start while a hold blocks it; None when it can."""
    if command.old_master_stopped:
        return None
    blockers = progress_hold_blockers(progress)
    if not blockers:
        return None
    return (
        f"{'; '.join(blockers)}. Add --old-master-stopped only once you made sure that "
        "PostgreSQL is stopped"
    )


def release_confirmed_holds(progress: Progress, command: Command) -> None:
    """A failover command confirmed the held PostgreSQL stopped: end those holds.

    The command's target keeps its hold (it is live: its own report ends it).
    """
    held = progress.state.paused_holds
    if not command.old_master_stopped or not held:
        return
    kept = {name: instance for name, instance in held.items() if name == command.target}
    released = sorted(set(held) - set(kept))
    if not released:
        return
    progress.change(paused_holds=kept)
    progress.note(
        f"pause hold of {', '.join(released)} ended: {command.requested_by} confirmed "
        "the old master's PostgreSQL stopped"
    )
