"""Operator commands (`commands/<name>`): started one at a time, oldest first.

While the cluster is paused nothing happens and commands stay pending. A
command that arrives while an operation is in progress is refused, except a
failover command during an automatic failover that is still fencing: it
takes that failover over (e.g. to promote a named standby beyond the lag
bound when nobody else is eligible).
"""

from __future__ import annotations

from rhizome.sentinel.decision.cutover import start_cutover
from rhizome.sentinel.decision.failover import adopt_failover_command, start_failover_command
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.results import already_finished, refuse_command
from rhizome.sentinel.decision.switchover import start_switchover
from rhizome.store.documents import Command
from rhizome.store.view import Stored


def pending_commands(progress: Progress) -> list[Stored[Command]]:
    """Commands not yet started, oldest first; finished ones still stored are deleted."""
    operation = progress.state.operation
    running = operation.command if operation is not None else None
    pending = []
    commands = progress.observation.commands
    for name in sorted(commands, key=lambda name: (commands[name].document.requested_at, name)):
        stored = commands[name]
        if name == running:
            continue
        if already_finished(progress, stored.document):
            progress.finish_command(name)
            continue
        pending.append(stored)
    return pending


def start_next_command(progress: Progress, master_loss: str | None) -> None:
    """Start (or refuse) the oldest pending command; the others wait for the next step."""
    pending = pending_commands(progress)
    if not pending:
        return
    command = pending[0].document
    if command.kind == "switchover":
        start_switchover(progress, command, master_loss)
    elif command.kind == "cutover":
        start_cutover(progress, command, master_loss)
    else:
        start_failover_command(progress, command)


def handle_commands_during_operation(progress: Progress) -> None:
    """Refuse new commands while an operation runs (a failover command may join one)."""
    operation = progress.state.operation
    if operation is None:
        return
    for stored in pending_commands(progress):
        command = stored.document
        if command.kind == "failover" and adopt_failover_command(progress, command):
            continue
        refuse_command(
            progress,
            command,
            f"a {operation.kind} is in progress (phase {operation.phase}); "
            "try again when it has finished",
        )
