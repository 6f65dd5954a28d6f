"""The deadline of a promotion, and what follows an abandoned one.

A keeper told to promote (phase `promoting`) that has not reported a running
primary with the promoting generation acknowledged within
timing.promotion_deadline is abandoned, whatever it reports meanwhile (a
healthy standby forever, say): proxies route nowhere while it lasts.

Abandoning it must not make two primaries: it was told to promote and may
complete the promotion late. So it is first fenced like an old master: it is
assigned `fenced`, recorded in operation.abandoned_targets, and the operation
goes back to phase `fencing`. Nobody is promoted until it acknowledged that
generation without accepting writes, or its lease expired (fencing.py). The
synchronous set the old master had is put back (the promotion restarted it
unconfirmed, and nobody has confirmed anything since). Then, in order:
1. another candidate under the operation's rules: a confirmed synchronous
   standby with synchronous replication, else the most advanced within the
   lag bound; after an abandoned switchover, only one that received the old
   master's shutdown checkpoint (nothing is lost);
2. else the old master gets its role back if its keeper is live, it is the
   instance that was master, and it acknowledged its fencing (nobody else was
   promoted: it holds every write);
3. else an abandoned target is tried again (the oldest first), once fenced;
4. else the sentinel waits, saying why in no_promotion_reason.
"""

from __future__ import annotations

from rhizome.sentinel.decision.candidates import CandidateChoice
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.promotion import FENCED, advance_promoting
from rhizome.sentinel.decision.results import finish_operation_command

REASON_LENGTH = 2000
"""An operation's reason is cut to about this length (each abandonment appends one)."""


def advance_promotion(progress: Progress) -> None:
    """Route to the promoted keeper, or abandon its promotion once overdue."""
    advance_promoting(progress)
    operation = progress.state.operation
    if operation is None or operation.phase != "promoting":
        return
    limit = progress.timing.promotion_deadline
    if progress.waited(operation.phase_started_at, limit):
        abandon_promotion(progress, limit)


def abandon_promotion(progress: Progress, limit: float) -> None:
    """Fence the overdue target; the operation goes back to fencing."""
    state = progress.state
    operation = state.operation
    assert operation is not None and operation.target is not None
    target = operation.target
    why = (
        f"promotion of {target} abandoned: it did not report a running primary "
        f"within {limit:g} s (timing.promotion_timeout)"
    )
    finish_operation_command(progress, "abandoned", f"{why}; {target} is fenced", new_master=None)
    abandoned = (*(name for name in operation.abandoned_targets if name != target), target)
    progress.change(
        master=None,
        assignments={**state.assignments, target: FENCED},
        synchronous_standbys=operation.synchronous_standbys_before or state.synchronous_standbys,
        operation=operation.with_changes(
            phase="fencing",
            target=None,
            command=None,
            phase_started_at=progress.now,
            phase_generation=progress.next_generation,
            abandoned_targets=abandoned,
            reason=appended(operation.reason, why),
        ),
        no_promotion_reason=f"{why}; waiting for it to be fenced before promoting anybody",
    )
    progress.note(f"{operation.kind}: {why}; fencing it")


def appended(reason: str | None, addition: str) -> str:
    """`reason; addition`, the original reason cut so that the whole stays short."""
    if reason is None:
        return addition
    if len(reason) + len(addition) > REASON_LENGTH:
        reason = reason[: REASON_LENGTH // 2] + " …"
    return f"{reason}; {addition}"


def without_lost_writes(progress: Progress, choice: CandidateChoice) -> CandidateChoice:
    """After an abandoned switchover: the candidate must hold the old master's last record."""
    operation = progress.state.operation
    assert operation is not None
    old = progress.keeper(operation.previous_master)
    if choice.best is None or operation.kind != "switchover" or old is None:
        return choice
    final = old.flush_lsn
    candidate = progress.keeper(choice.best)
    position = candidate.wal_position if candidate is not None else None
    if old.running or final is None or (position is not None and position > final):
        return choice
    refusal = f"{choice.best} lacks the old master's shutdown checkpoint at {final}"
    return CandidateChoice(best=None, refusals=(*choice.refusals, refusal))


def retry_candidate(progress: Progress) -> str | None:
    """The oldest abandoned target that may be told to promote again, if any."""
    operation = progress.state.operation
    assert operation is not None
    synchronous = progress.spec.synchronous_replication.enabled
    for name in operation.abandoned_targets:
        settings = progress.settings(name)
        if (
            name == operation.previous_master
            or progress.keeper(name) is None
            or settings.maintenance
            or settings.no_failover
            or progress.removal_requested(name)
            or (synchronous and name not in progress.state.synchronous_standbys.promotable)
        ):
            continue
        return name
    return None
