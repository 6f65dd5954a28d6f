"""Major-upgrade cutover (command `cutover`, docs/design/major-upgrade.md).

The master hands the cluster over to its `successor`, a second rhizome
cluster whose master is fed by logical replication from this one:

0. Drain (phase `draining`) and block (phase `blocking`) as a switchover
   does: proxies hold new read-write clients, then route nowhere, every live
   proxy acknowledging each generation.
1. Seal (phase `sealing`): the master's assignment gets `sealed`; its keeper
   lets no client in, terminates every client session, records the
   sequences in the replicated table and reports `sealed_lsn`.
2. Hand over once the master acknowledged the sealing generation and the
   successor confirmed everything up to that position (the least
   confirmed_flush_lsn of the upgrade's logical slots): the state names the
   `successor`, the proxies follow its store keys (proxy/succession.py) and
   this cluster changes nothing any more (decide.py).

Refused when the master is lost, when it has no logical slot of the upgrade
(`rhizomectl upgrade prepare` was not run) or when the successor lags more
than max_standby_lag_bytes. Abandoned (routing and the master restored) on
the command's timeout or a phase longer than proxy_hold_timeout; nothing was
written on the successor that this cluster lacks, so nothing is lost.

Method `link` (pg_upgrade --link of the master's data, for what logical
replication cannot carry) stops instead of sealing: phase `stopping` fences
the master as a switchover demotes it (clean shutdown, its final position
reported), and hands over once every live standby received that shutdown
checkpoint: they are the copies a rollback starts from, since pg_upgrade
--link leaves the old data unusable once the new cluster started. The
proxies then follow a successor that does not run yet (pg_upgrade and its
start come next, `rhizomectl upgrade link`): they hold new clients meanwhile,
for at most proxy_hold_timeout. Abandoned like a switchover's demotion: the
master gets its role back.
"""

from __future__ import annotations

from rhizome.sentinel.decision.fencing import unacknowledged_proxies
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.promotion import FENCED
from rhizome.sentinel.decision.results import finish_operation_command, refuse_command
from rhizome.sentinel.decision.switchover import (
    clean_stop_position,
    overdue_reason,
    start_draining,
)
from rhizome.store.documents import Command
from rhizome.store.state import DRAINING_PHASE, KeeperAssignment

SEALING_PHASE = "sealing"
STOPPING_PHASE = "stopping"
CUTOVER_PHASES = frozenset({DRAINING_PHASE, "blocking", SEALING_PHASE, STOPPING_PHASE})
"""The phases advance_cutover moves on (an abandoned link cutover restoring the old
master goes through `promoting`, as a switchover's demotion does)."""


def start_cutover(progress: Progress, command: Command, master_loss: str | None) -> None:
    """Refuse the command, or hold new clients (phase draining)."""
    master = progress.state.master
    assert command.successor is not None
    if master_loss is not None or master is None:
        refuse_command(progress, command, f"{master_loss}: the cluster needs a master to hand over")
        return
    refusal = successor_refusal(progress, master) if command.method == "logical" else None
    if refusal is not None:
        refuse_command(progress, command, refusal)
        return
    reason = f"cutover to cluster {command.successor} requested by {command.requested_by}"
    start_draining(
        progress, command, "cutover", reason, successor=command.successor, method=command.method
    )
    progress.note(f"cutover: holding new clients to hand {master} over to {command.successor}")


def successor_refusal(progress: Progress, master: str) -> str | None:
    """Why the successor cannot take over now (no upgrade slot, or too far behind)."""
    document = progress.keeper(master)
    confirmed = document.upgrade_confirmed_lsn if document is not None else None
    if document is None or confirmed is None or document.flush_lsn is None:
        return (
            f"master {master} reports no logical slot rhizome_upgrade_*: run"
            " `rhizomectl upgrade prepare` against it and the successor's master first"
        )
    behind = document.flush_lsn - confirmed
    bound = progress.spec.max_standby_lag_bytes
    if behind > bound:
        return (
            f"the successor is {behind} bytes behind master {master} (bound"
            f" max_standby_lag_bytes {bound}): wait until `rhizomectl upgrade status` shows"
            " it caught up"
        )
    return None


def advance_cutover(progress: Progress) -> None:
    """Move the cutover in progress forward, phase by phase."""
    operation = progress.state.operation
    assert operation is not None
    if operation.phase == STOPPING_PHASE:
        advance_stopping(progress)
        return
    overdue = overdue_reason(progress)
    if overdue is not None:
        abandon_cutover(progress, overdue)
    elif operation.phase == SEALING_PHASE:
        advance_sealing(progress)
    elif unacknowledged_proxies(progress):
        waiting = ", ".join(unacknowledged_proxies(progress))
        progress.note(f"cutover: waiting for proxies {waiting} ({operation.phase})")
    elif operation.phase == DRAINING_PHASE:
        next_phase(progress, "blocking", proxy_target=progress.state.proxy_target.retargeted(None))
    elif operation.method == "link":
        master = operation.previous_master
        assert master is not None
        assignments = {**progress.state.assignments, master: FENCED}
        next_phase(progress, STOPPING_PHASE, master=None, assignments=assignments)
    else:
        master = operation.previous_master
        assert master is not None
        sealed = KeeperAssignment(role="master", sealed=True)
        next_phase(progress, SEALING_PHASE, assignments={**progress.state.assignments,
                                                         master: sealed})  # fmt: skip


def next_phase(progress: Progress, phase: str, **changes: object) -> None:
    operation = progress.state.operation
    assert operation is not None
    progress.change(
        operation=operation.with_changes(
            phase=phase, phase_started_at=progress.now, phase_generation=progress.next_generation
        ),
        **changes,
    )
    progress.note(f"cutover: {phase} {operation.previous_master}")


def advance_sealing(progress: Progress) -> None:
    """Hand over once the sealed master's final position reached the successor."""
    operation = progress.state.operation
    assert operation is not None and operation.successor is not None
    master = progress.keeper(operation.previous_master)
    if master is None:
        abandon_cutover(progress, f"the keeper of {operation.previous_master} was lost")
        return
    sealed_at = sealed_position(progress)
    if sealed_at is None:
        progress.note(f"cutover: waiting for {master.name} to report itself sealed")
        return
    confirmed = master.upgrade_confirmed_lsn
    if confirmed is None or confirmed < sealed_at:
        progress.note(
            f"cutover: waiting for {operation.successor} to confirm {sealed_at}"
            f" (it confirmed {confirmed})"
        )
        return
    hand_over(progress, sealed_at)


def advance_stopping(progress: Progress) -> None:
    """Hand over once the master stopped cleanly and every live standby has its last record."""
    final = clean_stop_position(progress, "cutover: waiting for the clean stop")
    if final is None:
        return
    behind = standbys_behind(progress, final)
    if behind:
        progress.note(f"cutover: waiting for {', '.join(behind)} to receive the shutdown "
                      f"checkpoint at {final}")  # fmt: skip
        return
    hand_over(progress, final)


def standbys_behind(progress: Progress, final: int) -> list[str]:
    """Live standbys that have not received the stopped master's shutdown checkpoint."""
    behind = []
    for name in progress.state.keepers_with_role("standby"):
        document = progress.keeper(name)
        if document is not None and (document.wal_position or 0) <= final:
            behind.append(name)
    return sorted(behind)


def hand_over(progress: Progress, position: int) -> None:
    """The successor takes over: the state names it, and the operation is done."""
    operation = progress.state.operation
    assert operation is not None
    reason = f"cluster {operation.successor} took over at position {position}"
    finish_operation_command(progress, "done", reason, new_master=None)
    progress.change(operation=None, successor=operation.successor)
    progress.note(f"cutover: {reason}; proxies follow it, this cluster changes nothing more")


def sealed_position(progress: Progress) -> int | None:
    """The master's sealed position, once the instance that was master acknowledged
    the sealing generation (a seal reported for an earlier one is not taken)."""
    operation = progress.state.operation
    assert operation is not None
    master = progress.keeper(operation.previous_master)
    if master is None or master.sealed_lsn is None:
        return None
    expected = operation.previous_master_instance
    if expected is not None and master.instance_id != expected:
        return None
    if master.acknowledged_state_generation < (operation.phase_generation or 0):
        return None
    return master.sealed_lsn


def abandon_cutover(progress: Progress, why: str) -> None:
    """Give up: the seal is lifted and the proxies route to the master again."""
    operation = progress.state.operation
    assert operation is not None
    master = operation.previous_master
    reason = f"{why}; {master} goes on as master"
    finish_operation_command(progress, "abandoned", reason, new_master=master)
    assignments = dict(progress.state.assignments)
    if master is not None and master in assignments:
        assignments[master] = KeeperAssignment(role="master")
    progress.change(operation=None, assignments=assignments)
