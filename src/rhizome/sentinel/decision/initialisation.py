"""Initialisation of the cluster.

The first master is spec.initial_master once its keeper is live, otherwise
the first live keeper by name (not in maintenance, not being removed). It is
assigned `master` (operation `initialisation`, phase `initialising`): with
init_mode new its keeper runs initdb, with init_mode existing it keeps its
data. Once it reports a running primary with that generation acknowledged,
the cluster is `initialized`, proxies route to it and every other live keeper
becomes its standby (membership.py). If a chosen keeper that was not named
by the spec dies before that, another one is chosen after failover_delay.
Commands are refused until the cluster is initialised.
"""

from __future__ import annotations

from rhizome.sentinel.decision.commands import pending_commands
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.promotion import MASTER, publish_master
from rhizome.sentinel.decision.results import refuse_command
from rhizome.store.state import Operation


def advance_initialisation(progress: Progress) -> None:
    """One step of initialisation."""
    for stored in pending_commands(progress):
        refuse_command(progress, stored.document, "the cluster is not initialised yet")
    state = progress.state
    if state.master is None:
        assign_initial_master(progress, excluded=None)
        return
    document = progress.keeper(state.master)
    operation = state.operation
    required = (operation.phase_generation if operation is not None else None) or 0
    if (
        document is not None
        and document.accepts_writes
        and document.acknowledged_state_generation >= required
    ):
        publish_master(progress, document)
        return
    if document is None:
        replace_missing_master(progress, state.master)
        return
    progress.note(f"initialisation: waiting for {state.master} to report a running primary")


def first_master(progress: Progress, excluded: str | None) -> str | None:
    """The keeper to initialise the cluster on, if one is live."""
    named = progress.spec.initial_master
    if named is not None:
        return named if progress.keeper(named) is not None else None
    for name in sorted(progress.observation.keepers):
        if name == excluded:
            continue
        if progress.settings(name).maintenance or progress.removal_requested(name):
            continue
        return name
    return None


def assign_initial_master(progress: Progress, excluded: str | None) -> None:
    """Assign the first master (phase initialising)."""
    name = first_master(progress, excluded)
    if name is None:
        waited = progress.spec.initial_master or "a live keeper"
        progress.note(f"initialisation: waiting for {waited}")
        return
    mode = progress.spec.init_mode
    operation = Operation(
        kind="initialisation",
        phase="initialising",
        target=name,
        started_at=progress.now,
        phase_started_at=progress.now,
        phase_generation=progress.next_generation,
        reason=f"cluster initialised on {name} (init_mode {mode})",
    )
    progress.change(master=name, assignments={name: MASTER}, operation=operation)
    action = "initdb" if mode == "new" else "adopting its data directory"
    progress.note(f"initialisation: {name} becomes the first master ({action})")


def replace_missing_master(progress: Progress, master: str) -> None:
    """The chosen first master died before it reported: choose another one."""
    if progress.spec.initial_master is not None:
        progress.note(f"initialisation: waiting for the keeper of {master}")
        return
    since = progress.state.missing_keepers_since.get(master, progress.now)
    if not progress.waited(since, progress.timing.failover_delay):
        return
    if first_master(progress, excluded=master) is None:
        progress.note(f"initialisation: {master} is gone and no other keeper is live")
        return
    progress.note(f"initialisation: {master} is gone before it reported; choosing another keeper")
    assign_initial_master(progress, excluded=master)
