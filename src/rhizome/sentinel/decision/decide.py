"""decide(): the next state as a pure function of spec, state, observations,
commands and time (no I/O, no clock, no randomness).

One call applies the rules step by step until nothing changes any more, so
deciding again on the same observation changes nothing (idempotence). All
the changes of one call make ONE new state: its generation is the input's
plus one when the topology changed (assignments, master, proxy target,
operation, synchronous set, initialisation), and unchanged when only the
decision's memory changed (memory.BOOKKEEPING_FIELDS, and the operation's
timers re-armed by a new leader). When nothing changes,
the input state object itself is returned.

A step never needs an intermediate state to be seen by agents unless its
condition says so: e.g. promotion waits for acknowledgements of the fencing
generation, which no agent can have given for a state not yet written.
"""

from __future__ import annotations

from collections.abc import Callable

from rhizome.sentinel.decision.abandonment import advance_promotion
from rhizome.sentinel.decision.commands import (
    handle_commands_during_operation,
    start_next_command,
)
from rhizome.sentinel.decision.cutover import CUTOVER_PHASES, advance_cutover
from rhizome.sentinel.decision.failover import (
    advance_fencing,
    master_loss,
    react_to_master_loss,
    take_over_lost_master,
)
from rhizome.sentinel.decision.initialisation import advance_initialisation
from rhizome.sentinel.decision.membership import maintain_membership
from rhizome.sentinel.decision.memory import BOOKKEEPING_FIELDS, update_memory, without_timers
from rhizome.sentinel.decision.model import ClusterObservation, Decision, Progress
from rhizome.sentinel.decision.pause_holds import with_pause_holds
from rhizome.sentinel.decision.restore import take_restore_command
from rhizome.sentinel.decision.switchover import (
    advance_blocking,
    advance_demoting,
    advance_draining,
)
from rhizome.sentinel.decision.synchronous import maintain_synchronous_set
from rhizome.store.state import DRAINING_PHASE, ClusterState

MAXIMUM_STEPS = 16
"""Steps of one decision; a handful suffice, the bound only guards against a loop."""

PAUSED_NOTE = "the cluster is paused: no change is made and commands stay pending"
HANDED_OVER_NOTE = "handed over to cluster {}: no change is made here any more"
HELD_NOTE = "held while paused (their PostgreSQL outlives their keeper): "

PHASES: dict[str, Callable[[Progress], None]] = {
    "fencing": advance_fencing,
    DRAINING_PHASE: advance_draining,
    "blocking": advance_blocking,
    "demoting": advance_demoting,
    "promoting": advance_promotion,
}
"""What moves each operation phase forward (initialising is handled apart)."""

MASTER_PHASES = frozenset({DRAINING_PHASE, "blocking", "promoting"})
"""Phases in which a master is assigned, whose loss starts a failover."""


def decide(observation: ClusterObservation) -> Decision:
    """The next state, the commands to delete and notes on why."""
    initial = observation.state if observation.state is not None else ClusterState()
    if observation.spec.paused:
        return paused_decision(observation, initial)
    if initial.successor is not None:  # its keepers stay as they are until removed
        note = HANDED_OVER_NOTE.format(initial.successor)
        return Decision(state=initial, finished_commands=(), notes=(note,))
    progress = Progress(observation, initial)
    for _ in range(MAXIMUM_STEPS):
        before = progress.state
        decide_step(progress)
        if progress.state == before:
            break
    else:
        progress.note(f"decision still changing after {MAXIMUM_STEPS} steps; continuing later")
    return Decision(
        state=finalised(initial, progress.state),
        finished_commands=tuple(progress.finished.items()),
        notes=tuple(progress.notes),
        recheck_at=progress.recheck_at,
    )


def paused_decision(observation: ClusterObservation, initial: ClusterState) -> Decision:
    """While paused, only the holds are recorded (pause_holds.py); nothing else changes."""
    held = with_pause_holds(initial, observation.keepers, paused=True)
    notes = [PAUSED_NOTE]
    if held.paused_holds:
        notes.append(HELD_NOTE + ", ".join(sorted(held.paused_holds)))
    return Decision(state=held, finished_commands=(), notes=tuple(notes))


def finalised(initial: ClusterState, decided: ClusterState) -> ClusterState:
    """`decided` with the generation increased when the topology changed."""
    if decided == initial:
        return initial
    ignored = BOOKKEEPING_FIELDS | {"generation", "format_version"}
    before, after = without_timers(initial), without_timers(decided)
    topology_changed = any(
        getattr(after, name) != getattr(before, name)
        for name in ClusterState.model_fields
        if name not in ignored
    )
    return decided.with_next_generation() if topology_changed else decided


def decide_step(progress: Progress) -> None:
    """Apply the rules once to the working state."""
    update_memory(progress)
    state = progress.state
    if state.successor is not None:
        return  # handed over by the cutover just decided
    if state.initialized and take_restore_command(progress):
        return  # whatever ran before, the restored keeper is the master now
    if not state.initialized:
        advance_initialisation(progress)
    elif state.operation is None:
        advance_steady_state(progress)
    else:
        advance_operation(progress)


def advance_steady_state(progress: Progress) -> None:
    """No operation in progress: watch the master, start commands, keep the topology."""
    loss = master_loss(progress) if progress.state.master is not None else "no master is assigned"
    if loss is not None and react_to_master_loss(progress, loss):
        return
    if loss is None and progress.state.no_promotion_reason is not None:
        progress.change(no_promotion_reason=None)
    start_next_command(progress, loss)
    if progress.state.operation is not None:
        return
    repair_routing(progress)
    maintain_membership(progress)
    maintain_synchronous_set(progress)


def advance_operation(progress: Progress) -> None:
    """Move the operation in progress forward."""
    operation = progress.state.operation
    assert operation is not None
    if operation.kind == "initialisation":
        progress.change(operation=None)  # initialised already: nothing left to do
        return
    if operation.phase in MASTER_PHASES:
        master = progress.state.master
        loss = master_loss(progress)
        maintenance = master is not None and progress.settings(master).maintenance
        if loss is not None and not maintenance and take_over_lost_master(progress, loss):
            return
    handle_commands_during_operation(progress)
    if operation.kind == "cutover" and operation.phase in CUTOVER_PHASES:
        advance_cutover(progress)
        return
    handler = PHASES.get(operation.phase)
    if handler is None:
        progress.note(f"unknown phase {operation.phase!r} of a {operation.kind}: waiting")
        return
    handler(progress)


def repair_routing(progress: Progress) -> None:
    """Outside operations, proxies route to the master when it accepts writes.

    This restores routing after a switchover abandoned while blocking writes,
    and follows a master whose published address changed.
    """
    state = progress.state
    master = progress.keeper(state.master)
    if master is None or not master.accepts_writes:
        return
    target = state.proxy_target
    if (target.master, target.host, target.port) == (master.name, master.host, master.port):
        return
    progress.change(proxy_target=target.retargeted(master.name, master.host, master.port))
    progress.note(f"proxies route to master {master.name} at {master.host}:{master.port}")
