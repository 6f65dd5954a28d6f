"""The last two steps of every operation: promote, then route.

Promote (phase `promoting`): the chosen keeper is assigned master and every
standby follows it. Route: once it reports a running primary with the
promoting generation acknowledged, proxies are pointed at it (proxy
generation + 1), the operation ends and the history records the change.
"""

from __future__ import annotations

from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.results import finish_operation_command
from rhizome.sentinel.decision.synchronous import synchronous_set_for_new_master
from rhizome.store.documents import KeeperInfo
from rhizome.store.state import KeeperAssignment, RoleChange

MASTER = KeeperAssignment(role="master")
FENCED = KeeperAssignment(role="fenced")


def promote(progress: Progress, candidate: str, *, restore: bool = False) -> None:
    """Assign `candidate` master (phase promoting).

    `restore` gives the master role back to the old master of the operation:
    nobody else was promoted since it was fenced, so it holds every write and
    its synchronous set stays valid.
    """
    state = progress.state
    operation = state.operation
    assert operation is not None, "promotion happens within an operation"
    assignments = {candidate: MASTER}
    for name, assignment in state.assignments.items():
        if name == candidate:
            assignments[name] = MASTER
        elif assignment.role == "standby":
            assignments[name] = KeeperAssignment(role="standby", follow=candidate)
        elif assignment.role == "master":
            assignments[name] = FENCED
        else:
            assignments[name] = assignment
    promoting = operation.with_changes(
        phase="promoting",
        target=candidate,
        phase_started_at=progress.now,
        phase_generation=progress.next_generation,
        abandoned_targets=tuple(name for name in operation.abandoned_targets if name != candidate),
    )
    changes: dict[str, object] = {
        "master": candidate,
        "assignments": assignments,
        "no_promotion_reason": None,
        "operation": promoting,
    }
    if not restore:
        if (
            operation.synchronous_standbys_before is None
            and progress.spec.synchronous_replication.enabled
        ):
            # kept for an abandoned promotion: the new set starts unconfirmed
            changes["operation"] = promoting.with_changes(
                synchronous_standbys_before=state.synchronous_standbys
            )
        changes["synchronous_standbys"] = synchronous_set_for_new_master(
            progress, candidate, operation.previous_master
        )
        changes["master_timeline"] = None
    progress.change(**changes)
    action = "restoring old master" if restore else "promoting"
    progress.note(f"{operation.kind}: {action} {candidate}")


def set_no_promotion_reason(progress: Progress, reason: str) -> None:
    """Say in the state why nobody is promoted now."""
    if progress.state.no_promotion_reason != reason:
        progress.change(no_promotion_reason=reason)
    progress.note(f"no promotion: {reason}")


def advance_promoting(progress: Progress) -> None:
    """Route to the new master once it reports a running primary."""
    operation = progress.state.operation
    assert operation is not None and operation.target is not None
    document = progress.keeper(operation.target)
    required = operation.phase_generation or 0
    if (
        document is not None
        and document.accepts_writes
        and document.acknowledged_state_generation >= required
    ):
        publish_master(progress, document)
        return
    progress.note(
        f"{operation.kind}: waiting for {operation.target} to report a running primary "
        f"at generation {required}"
    )


def publish_master(progress: Progress, master: KeeperInfo) -> None:
    """Route proxies to `master`, end the operation, record the change."""
    state = progress.state
    operation = state.operation
    kind = operation.kind if operation is not None else "initialisation"
    previous = operation.previous_master if operation is not None else None
    reason = (operation.reason if operation is not None else None) or f"{kind} to {master.name}"
    if operation is not None and operation.command is not None:
        done = f"{operation.kind} to {master.name} done"
        finish_operation_command(progress, "done", done, new_master=master.name)
    changes: dict[str, object] = {
        "proxy_target": state.proxy_target.retargeted(master.name, master.host, master.port),
        "operation": None,
        "initialized": True,
        "master_timeline": master.timeline,
        "master_flush_lsn": master.flush_lsn,
        "master_unhealthy_since": None,
        "no_promotion_reason": None,
    }
    if state.system_identifier is None and master.system_identifier is not None:
        changes["system_identifier"] = master.system_identifier
    progress.change(**changes)
    if master.name != previous:
        entry = RoleChange(
            at=progress.now,
            generation=progress.next_generation,
            kind=kind,
            old_master=previous,
            new_master=master.name,
            reason=reason,
        )
        progress.change(history=progress.state.with_history_entry(entry).history)
    progress.note(f"{kind}: {master.name} is the master; proxies route to it")
