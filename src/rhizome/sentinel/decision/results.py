"""Finishing operator commands: a CommandResult in the state, the key deleted.

A command is finished once: done, refused (never started) or abandoned
(timed out, or overtaken by a failover). Its result names it with its
requested_at, so that a finished command still stored (the sentinel wrote the
state but did not get to delete the key) is recognised and only deleted.
"""

from __future__ import annotations

from rhizome.sentinel.decision.model import Progress
from rhizome.store.documents import Command
from rhizome.store.state import (
    COMMAND_RESULTS_LIMIT,
    CommandKindName,
    CommandOutcome,
    CommandResult,
)


def already_finished(progress: Progress, command: Command) -> bool:
    """The command has a result already (its deletion did not happen yet)."""
    return any(
        result.command == command.name and result.requested_at == command.requested_at
        for result in progress.state.command_results
    )


def record_result(
    progress: Progress,
    *,
    name: str,
    kind: CommandKindName,
    outcome: CommandOutcome,
    reason: str,
    requested_at: float | None,
    old_master: str | None,
    new_master: str | None,
    write_pause: float | None = None,
) -> None:
    """Append the command's result (keeping the most recent ones) and finish it."""
    result = CommandResult(
        command=name,
        kind=kind,
        outcome=outcome,
        reason=reason,
        finished_at=progress.now,
        old_master=old_master,
        new_master=new_master,
        write_pause=write_pause if write_pause is not None and write_pause > 0 else None,
        requested_at=requested_at,
    )
    results = (*progress.state.command_results, result)[-COMMAND_RESULTS_LIMIT:]
    progress.change(command_results=results)
    progress.finish_command(name)
    progress.note(f"command {name} ({kind}) {outcome}: {reason}")


def refuse_command(progress: Progress, command: Command, reason: str) -> None:
    """Finish a command that was not started."""
    master = progress.state.master
    record_result(
        progress,
        name=command.name,
        kind=command.kind,
        outcome="refused",
        reason=reason,
        requested_at=command.requested_at,
        old_master=master,
        new_master=master,
    )


def finish_operation_command(
    progress: Progress, outcome: CommandOutcome, reason: str, new_master: str | None
) -> None:
    """Finish the command that started the operation in progress, if any."""
    operation = progress.state.operation
    if operation is None or operation.command is None:
        return
    stored = progress.observation.commands.get(operation.command)
    kind: CommandKindName = "failover"
    if operation.kind in ("switchover", "cutover"):
        kind = "switchover" if operation.kind == "switchover" else "cutover"
    record_result(
        progress,
        name=operation.command,
        kind=stored.document.kind if stored is not None else kind,
        outcome=outcome,
        reason=reason,
        requested_at=stored.document.requested_at if stored is not None else None,
        old_master=operation.previous_master,
        new_master=new_master,
        write_pause=progress.now - operation.started_at,
    )


def command_timed_out(progress: Progress) -> bool:
    """The timeout of the operation's command has passed.

    It counts from the start of a switchover, and from the start of the
    fencing phase of a failover (which an automatic failover may have begun
    long before the command joined it).
    """
    operation = progress.state.operation
    if operation is None or operation.command is None:
        return False
    stored = progress.observation.commands.get(operation.command)
    if stored is None or stored.document.timeout is None:
        return False
    started = operation.phase_started_at if operation.kind == "failover" else operation.started_at
    return progress.waited(started, stored.document.timeout)
