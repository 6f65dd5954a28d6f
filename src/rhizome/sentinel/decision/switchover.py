"""Planned switchover (command `switchover`, optional target).

0. Drain (phase `draining`, store.state.DRAINING_PHASE): the proxy target
   gets a new generation with the same master; proxies hold new read-write
   clients and acknowledge it once the logins under way have finished, so
   that blocking cuts no client in the middle of its login.
1. Block writes (phase `blocking`) once every live proxy acknowledged:
   proxies routed nowhere, the master keeps running.
2. Demote (phase `demoting`) once every live proxy acknowledged: the old
   master is `fenced`; its keeper shuts PostgreSQL down cleanly and reports
   `fenced` with its final flush position.
3. Promote (phase `promoting`) once the target has received everything the
   old master wrote, its shutdown checkpoint record included: the old master
   reports the position of that record as its final flush_lsn (pg_controldata
   "Latest checkpoint location"), and the target's receive_lsn/replay_lsn,
   which are end positions, must be beyond it. Then route (promotion.py); the
   old master rejoins as a standby of the target without pg_rewind
   (membership.py).

Refused (CommandResult "refused") when no eligible target exists or the named
one is not eligible or lags. Abandoned (CommandResult "abandoned") after the
command's timeout, when a phase lasts longer than proxy_hold_timeout, or when
the target fails: while blocking, routing goes back to the old master; while
demoting, the old master gets its role back (also when it stopped without a
clean shutdown); while draining, proxies simply stop holding. Once the
target is assigned master, only timing.promotion_deadline undoes it
(abandonment.py: the target is fenced, then a standby holding the old
master's last record is promoted, or the old master gets its role back). If
the old master's keeper is lost meanwhile, the switchover becomes an
automatic failover.
"""

from __future__ import annotations

from typing import Any

from rhizome.sentinel.decision.candidates import (
    CATCH_UP_RULES,
    SWITCHOVER_RULES,
    candidate_refusal,
    choose_candidate,
    named_candidate,
)
from rhizome.sentinel.decision.fencing import (
    instance_of,
    other_instance_blocker,
    promotion_blockers,
    unacknowledged_proxies,
)
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.promotion import FENCED, promote, set_no_promotion_reason
from rhizome.sentinel.decision.results import (
    command_timed_out,
    finish_operation_command,
    refuse_command,
)
from rhizome.store.documents import Command
from rhizome.store.state import DRAINING_PHASE, Operation, OperationKind


def start_switchover(progress: Progress, command: Command, master_loss: str | None) -> None:
    """Refuse the command, or hold new clients (phase draining)."""
    master = progress.state.master
    if master_loss is not None or master is None:
        refuse_command(progress, command, f"{master_loss}: use a failover command")
        return
    if command.target is not None and command.target == master:
        refuse_command(progress, command, f"{command.target} is the master already")
        return
    if command.target is not None:
        choice = named_candidate(progress, command.target, master, SWITCHOVER_RULES)
    else:
        choice = choose_candidate(progress, master, SWITCHOVER_RULES)
    if choice.best is None:
        refuse_command(progress, command, choice.describe())
        return
    reason = f"switchover to {choice.best} requested by {command.requested_by}"
    start_draining(progress, command, "switchover", reason, target=choice.best)
    progress.note(
        f"switchover: holding new clients to move the master from {master} to {choice.best}"
    )


def start_draining(
    progress: Progress, command: Command, kind: OperationKind, reason: str, **fields: Any
) -> None:
    """Start an operation that moves the master away (phase draining): the proxy
    target gets a new generation with the same master, so proxies hold new clients."""
    master = progress.state.master
    operation = Operation(
        kind=kind,
        phase=DRAINING_PHASE,
        previous_master=master,
        previous_master_instance=instance_of(progress, master),
        started_at=progress.now,
        phase_started_at=progress.now,
        command=command.name,
        phase_generation=progress.next_generation,
        reason=reason,
        **fields,
    )
    target = progress.state.proxy_target
    progress.change(
        operation=operation, proxy_target=target.retargeted(target.master, target.host, target.port)
    )


def advance_draining(progress: Progress) -> None:
    """Block writes once every live proxy has no read-write login under way."""
    operation = progress.state.operation
    assert operation is not None
    if not proxies_ready(progress, "new clients released", "finish logins"):
        return
    progress.change(
        operation=operation.with_changes(
            phase="blocking",
            phase_started_at=progress.now,
            phase_generation=progress.next_generation,
        ),
        proxy_target=progress.state.proxy_target.retargeted(None),
    )
    progress.note(f"switchover: blocking writes to {operation.previous_master}")


def proxies_ready(progress: Progress, restored: str, waiting_for: str) -> bool:
    """Before demoting: whether every live proxy acknowledged the phase's generation.

    Abandons the switchover (saying what is `restored`) when it is overdue or
    the target fails; notes the proxies still to `waiting_for`.
    """
    operation = progress.state.operation
    assert operation is not None and operation.target is not None
    overdue = overdue_reason(progress)
    if overdue is not None:
        abandon_blocking(progress, f"{overdue}; {restored}")
        return False
    refusal = candidate_refusal(progress, operation.target, CATCH_UP_RULES, None)
    if refusal is not None:
        abandon_blocking(progress, f"target {operation.target} {refusal}; {restored}")
        return False
    waiting = unacknowledged_proxies(progress)
    if waiting:
        progress.note(f"switchover: waiting for proxies {', '.join(waiting)} to {waiting_for}")
        return False
    return True


def abandon_blocking(progress: Progress, reason: str) -> None:
    """Give up before the old master was demoted: it goes on as master."""
    operation = progress.state.operation
    assert operation is not None
    finish_operation_command(progress, "abandoned", reason, new_master=operation.previous_master)
    progress.change(operation=None)


def advance_blocking(progress: Progress) -> None:
    """Demote the old master once every live proxy routes nowhere."""
    state = progress.state
    operation = state.operation
    assert operation is not None
    if not proxies_ready(progress, "routing restored", "route nowhere"):
        return
    old_master = operation.previous_master
    assert old_master is not None
    assignments = {**state.assignments, old_master: FENCED}
    progress.change(
        master=None,
        assignments=assignments,
        operation=operation.with_changes(
            phase="demoting",
            phase_started_at=progress.now,
            phase_generation=progress.next_generation,
        ),
    )
    progress.note(f"switchover: demoting {old_master}")


def advance_demoting(progress: Progress) -> None:
    """Promote the target once it has everything the cleanly stopped old master had."""
    operation = progress.state.operation
    assert operation is not None and operation.target is not None
    final = clean_stop_position(progress, "switchover: waiting for the demotion")
    if final is None:
        return
    refusal = candidate_refusal(progress, operation.target, CATCH_UP_RULES, None)
    target = progress.keeper(operation.target)
    if refusal is not None or target is None:
        restore_old_master(progress, f"target {operation.target} {refusal} while demoting")
        return
    position = target.wal_position or 0
    if position <= final:
        progress.note(
            f"switchover: waiting for {operation.target} to receive the shutdown checkpoint "
            f"at {final} (it has {position})"
        )
        return
    promote(progress, operation.target)


def clean_stop_position(progress: Progress, waiting: str) -> int | None:
    """The fenced old master's final position once it stopped cleanly; None before.

    Meanwhile: a lost keeper turns the operation into a failover, another
    instance under its name is waited for, an overdue phase or an unclean
    stop gives the old master its role back, and the other blockers are
    noted after `waiting`.
    """
    operation = progress.state.operation
    assert operation is not None
    old_master = operation.previous_master
    old = progress.keeper(old_master)
    if old is None:
        become_failover(progress)
        return None
    other_instance = other_instance_blocker(progress, old_master)
    if other_instance is not None:  # neither go on nor restore: wait for the real one
        set_no_promotion_reason(progress, other_instance)
        return None
    overdue = overdue_reason(progress)
    if overdue is not None:
        restore_old_master(progress, overdue)
        return None
    blockers = promotion_blockers(progress, old_master)
    if blockers:
        progress.note(f"{waiting}: " + "; ".join(blockers))
        return None
    if old.flush_lsn is None:
        restore_old_master(progress, f"{old_master} stopped without a clean shutdown")
    return old.flush_lsn


def overdue_reason(progress: Progress) -> str | None:
    """Why the switchover must be given up now: its timeout, or a phase too long.

    Proxies hold new connections for at most proxy_hold_timeout: a blocking
    or demoting phase lasting longer only makes clients fail, so it is given
    up even when the command has no timeout.
    """
    operation = progress.state.operation
    assert operation is not None
    if command_timed_out(progress):
        return f"timed out while {operation.phase}"
    limit = progress.timing.proxy_hold_timeout
    if progress.waited(operation.phase_started_at, limit):
        return f"{operation.phase} lasted longer than proxy_hold_timeout ({limit:g} s)"
    return None


def restore_old_master(progress: Progress, why: str) -> None:
    """Give up while demoting: the old master gets its role back."""
    operation = progress.state.operation
    assert operation is not None and operation.previous_master is not None
    old_master = operation.previous_master
    reason = f"{why}; {old_master} is restored as master"
    finish_operation_command(progress, "abandoned", reason, new_master=old_master)
    progress.change(operation=operation.with_changes(command=None))
    promote(progress, old_master, restore=True)


def become_failover(progress: Progress) -> None:
    """The old master's keeper was lost while demoting: fail over automatically."""
    operation = progress.state.operation
    assert operation is not None
    reason = f"the keeper of old master {operation.previous_master} was lost while demoting"
    finish_operation_command(progress, "abandoned", f"{reason}; failing over", new_master=None)
    progress.change(
        operation=operation.with_changes(
            kind="failover",
            phase="fencing",
            target=None,
            command=None,
            phase_started_at=progress.now,
            reason=reason,
        )
    )
    progress.note(f"switchover: {reason}; it becomes a failover")
