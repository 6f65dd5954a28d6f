"""Failover: the master is lost, or the operator forces a change of master.

1. Choose: nothing happens unless an eligible standby exists
   (no_promotion_reason says why not).
2. Fence (phase `fencing`): no master, the old master `fenced`, proxies
   routed nowhere (proxy generation + 1).
3. Promote once every live proxy acknowledged and the old master cannot
   accept writes, choosing the candidate again on fresh observations. When
   nobody is eligible any more but the old master's keeper is back, the old
   master gets its role back (nobody else was promoted, it has every write).
   Fencing is never skipped; once it lasts longer than
   timing.promotion_deadline, no_promotion_reason says what it waits for.
4. Route (promotion.py), or abandon a promotion that does not complete within
   timing.promotion_deadline (abandonment.py): back to 2 with the target fenced.
"""

from __future__ import annotations

from rhizome.sentinel.decision.abandonment import retry_candidate, without_lost_writes
from rhizome.sentinel.decision.candidates import (
    CandidateChoice,
    automatic_rules,
    choose_candidate,
    forced_rules,
    named_candidate,
)
from rhizome.sentinel.decision.fencing import (
    instance_of,
    other_instance_blocker,
    promotion_blockers,
)
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.pause_holds import (
    command_hold_refusal,
    progress_hold_blockers,
    release_confirmed_holds,
)
from rhizome.sentinel.decision.promotion import FENCED, promote, set_no_promotion_reason
from rhizome.sentinel.decision.results import (
    command_timed_out,
    finish_operation_command,
    refuse_command,
)
from rhizome.store.documents import Command
from rhizome.store.state import Operation


def master_loss(progress: Progress) -> str | None:
    """Why the assigned master counts as lost now; None while it does not."""
    state = progress.state
    master = state.master
    if master is None:
        return None
    document = progress.keeper(master)
    timing = progress.timing
    if document is None:
        missing_since = state.missing_keepers_since.get(master, progress.now)
        leading_since = progress.observation.leadership_started_at
        if progress.spec.failsafe and not progress.waited(leading_since, timing.keeper_lease_ttl):
            back = progress.now - leading_since
            progress.note(
                f"master {master}: keeper missing {back:.1f} s after this sentinel began to lead"
                " or regained etcd; with failsafe it may have served through an etcd outage and"
                " must get one keeper_lease_ttl to publish again"
            )
            return None
        if progress.waited(missing_since, timing.failover_delay):
            return f"the keeper of master {master} stopped reporting (its lease expired)"
        waited = progress.now - missing_since
        progress.note(f"master {master}: keeper missing for {waited:.1f} s, waiting")
        return None
    if document.running and document.healthy:
        return None
    unhealthy_since = state.master_unhealthy_since or progress.now
    waited = progress.now - unhealthy_since
    problem = "not running" if not document.running else "unhealthy"
    grace = timing.master_recovery_grace
    if state.operation is not None and state.operation.phase == "promoting":
        grace += timing.keeper_lease_ttl  # its keeper may have to start it first
    if progress.waited(unhealthy_since, grace):
        return f"master {master} reports PostgreSQL {problem}"
    progress.note(f"master {master}: PostgreSQL {problem} for {waited:.1f} s, within the grace")
    return None


def react_to_master_loss(progress: Progress, loss: str) -> bool:
    """Start a failover for a lost master; False when none can start (reason recorded)."""
    master = progress.state.master
    if master is not None and progress.settings(master).maintenance:
        reason = f"{loss}, but it is in maintenance: no automatic failover"
        set_no_promotion_reason(progress, reason)
        return False
    held = progress_hold_blockers(progress)
    if held:
        set_no_promotion_reason(progress, f"{loss}, but no failover: {'; '.join(held)}")
        return False
    choice = choose_candidate(progress, master, automatic_rules(progress.spec))
    if choice.best is None:
        set_no_promotion_reason(progress, f"{loss}; {choice.describe()}")
        return False
    progress.note(f"failover: {choice.best} is the best candidate now")
    start_failover(progress, master, loss)
    return True


def start_failover(
    progress: Progress,
    old_master: str | None,
    reason: str,
    *,
    command: str | None = None,
    target: str | None = None,
) -> None:
    """Fence the old master and route proxies nowhere (phase fencing)."""
    state = progress.state
    assignments = dict(state.assignments)
    if old_master is not None and old_master in assignments:
        assignments[old_master] = FENCED
    operation = Operation(
        kind="failover",
        phase="fencing",
        target=target,
        previous_master=old_master,
        previous_master_instance=instance_of(progress, old_master),
        started_at=progress.now,
        phase_started_at=progress.now,
        command=command,
        phase_generation=progress.next_generation,
        reason=reason,
    )
    progress.change(
        master=None,
        assignments=assignments,
        proxy_target=state.proxy_target.retargeted(None),
        operation=operation,
        no_promotion_reason=None,
    )
    progress.note(f"failover: fencing {old_master or 'nobody'} ({reason})")


def advance_fencing(progress: Progress) -> None:
    """Promote once fencing is complete (abandonment.py: after an abandoned promotion)."""
    operation = progress.state.operation
    assert operation is not None
    if command_timed_out(progress):
        abandon_failover_command(progress)
        return
    previous = operation.previous_master
    blockers = promotion_blockers(progress, previous)
    if blockers:
        wait_for_fencing(progress, blockers)
        return
    if operation.target is not None:
        choice = named_candidate(progress, operation.target, previous, forced_rules(progress.spec))
    else:
        choice = choose_candidate(progress, previous, automatic_rules(progress.spec))
        choice = without_lost_writes(progress, choice)
    retry = retry_candidate(progress) if operation.target is None else None
    if choice.best is not None:
        promote(progress, choice.best)
    elif operation.target is None and restorable(progress, previous):
        assert previous is not None
        promote(progress, previous, restore=True)
    elif retry is not None:
        progress.note(f"{operation.kind}: nobody else can be promoted; trying {retry} again")
        promote(progress, retry)
    else:
        set_no_promotion_reason(progress, choice.describe())


def wait_for_fencing(progress: Progress, blockers: list[str]) -> None:
    """Note what fencing waits for; past the promotion deadline, say it in the state too.

    Fencing is never skipped: its bound is the lease of whoever blocks it.
    """
    operation = progress.state.operation
    assert operation is not None
    waiting = "; ".join(blockers)
    progress.note(f"{operation.kind}: waiting before promotion: {waiting}")
    limit = progress.timing.promotion_deadline
    if progress.waited(operation.phase_started_at, limit):
        reason = f"fencing has lasted longer than {limit:g} s (timing.promotion_timeout): {waiting}"
        set_no_promotion_reason(progress, reason)


def abandon_failover_command(progress: Progress) -> None:
    """The command timed out before promotion: restore the old master, or go on alone."""
    operation = progress.state.operation
    assert operation is not None
    previous = operation.previous_master
    if restorable(progress, previous):
        assert previous is not None
        reason = f"timed out before promotion; {previous} is restored as master"
        finish_operation_command(progress, "abandoned", reason, new_master=previous)
        progress.change(operation=operation.with_changes(command=None))
        promote(progress, previous, restore=True)
        return
    reason = "timed out before promotion; the sentinel goes on with an automatic failover"
    finish_operation_command(progress, "abandoned", reason, new_master=None)
    progress.change(operation=operation.with_changes(command=None, target=None))


def restorable(progress: Progress, old_master: str | None) -> bool:
    """The old master's keeper is live, and it is the instance that was master."""
    return (
        old_master is not None
        and progress.keeper(old_master) is not None
        and other_instance_blocker(progress, old_master) is None
    )


def take_over_lost_master(progress: Progress, loss: str) -> bool:
    """The master of a switchover or promotion in progress is lost: fail over instead."""
    state = progress.state
    master = state.master
    assert master is not None
    choice = choose_candidate(progress, master, automatic_rules(progress.spec))
    if choice.best is None:
        set_no_promotion_reason(progress, f"{loss}; {choice.describe()}")
        return False
    finish_operation_command(progress, "abandoned", f"{loss}; failing over", new_master=None)
    progress.note(f"failover: {choice.best} is the best candidate now")
    start_failover(progress, master, loss)
    return True


def failover_command_choice(progress: Progress, command: Command) -> CandidateChoice:
    """The keeper a failover command would promote (named: no lag bound)."""
    old_master = progress.state.master or (
        progress.state.operation.previous_master if progress.state.operation else None
    )
    if command.target is not None:
        return named_candidate(progress, command.target, old_master, forced_rules(progress.spec))
    return choose_candidate(progress, old_master, automatic_rules(progress.spec))


def start_failover_command(progress: Progress, command: Command) -> None:
    """A forced failover: refused, or fencing started."""
    master = progress.state.master
    if command.target is not None and command.target == master:
        refuse_command(progress, command, f"{command.target} is the master already")
        return
    choice = failover_command_choice(progress, command)
    if choice.best is None:
        refuse_command(progress, command, choice.describe())
        return
    held = command_hold_refusal(progress, command)
    if held is not None:
        refuse_command(progress, command, held)
        return
    release_confirmed_holds(progress, command)
    target = f" to {command.target}" if command.target else ""
    reason = f"failover{target} requested by {command.requested_by}"
    if command.old_master_stopped:
        reason += ", who confirmed the old master's PostgreSQL stopped"
    start_failover(progress, master, reason, command=command.name, target=command.target)


def adopt_failover_command(progress: Progress, command: Command) -> bool:
    """A failover command joins an automatic failover that is still fencing."""
    operation = progress.state.operation
    if (
        operation is None
        or operation.kind != "failover"
        or operation.phase != "fencing"
        or operation.command is not None
    ):
        return False
    if command.target is not None and command.target == operation.previous_master:
        refuse_command(progress, command, f"{command.target} is the old master being fenced")
        return True
    if command.target is not None:
        choice = failover_command_choice(progress, command)
        if choice.best is None:
            refuse_command(progress, command, choice.describe())
            return True
    held = command_hold_refusal(progress, command)
    if held is not None:
        refuse_command(progress, command, held)
        return True
    release_confirmed_holds(progress, command)
    adopted = operation.with_changes(
        command=command.name, target=command.target, phase_started_at=progress.now
    )
    progress.change(operation=adopted)
    progress.note(f"failover: command {command.name} takes over the failover in progress")
    return True
