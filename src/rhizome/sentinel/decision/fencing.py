"""Fencing before promotion (DESIGN §3.2).

A new master is assigned only when every live proxy has acknowledged the
proxy generation that routes nowhere, and no keeper of the cluster may still
accept writes: the old master's keeper is gone (its lease expired, so it
fenced itself) or it reports that it cannot accept writes with the fencing
generation acknowledged. That report counts only from the instance that was
master (KeeperInfo.instance_id, remembered in operation.previous_master_instance
when fencing started): two hosts configured with one keeper name publish to
one key, and the other one's "fenced" proves nothing. Keepers whose promotion
was abandoned (operation.abandoned_targets) must be fenced the same way: told
to promote, they may complete the promotion late. A keeper held while the
cluster was paused (pause_holds.py) blocks every promotion until its hold
ends: its lease expiring proves nothing, its PostgreSQL outlives it.
"""

from __future__ import annotations

from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.pause_holds import progress_hold_blockers


def unacknowledged_proxies(progress: Progress) -> list[str]:
    """Live proxies that have not applied the current proxy generation."""
    generation = progress.state.proxy_target.proxy_generation
    return sorted(
        proxy_id
        for proxy_id, proxy in progress.observation.proxies.items()
        if proxy.acknowledged_proxy_generation < generation
    )


def instance_of(progress: Progress, name: str | None) -> str | None:
    """The instance_id of keeper `name`'s live document, None when unknown."""
    document = progress.keeper(name)
    return document.instance_id if document is not None else None


def other_instance_blocker(progress: Progress, old_master: str | None) -> str | None:
    """Why the live document of the old master is not from the instance that was master."""
    document = progress.keeper(old_master)
    operation = progress.state.operation
    if document is None or operation is None or old_master != operation.previous_master:
        return None
    expected = operation.previous_master_instance
    if expected is None or document.instance_id == expected:
        return None  # unknown when fencing started (older keeper or no document): as before
    return (
        f"keeper {old_master} is now reported by another instance "
        f"({document.instance_id or 'without an instance id'}) than the one that was master "
        f"({expected}); waiting for the instance that was master to report itself fenced "
        "or for its lease to expire"
    )


def old_master_blocker(progress: Progress, old_master: str | None) -> str | None:
    """Why the old master may still accept writes; None once it cannot."""
    document = progress.keeper(old_master)
    operation = progress.state.operation
    if document is None or operation is None:
        return None
    other_instance = other_instance_blocker(progress, old_master)
    if other_instance is not None:
        return other_instance
    fencing_generation = operation.phase_generation or progress.state.generation
    if document.acknowledged_state_generation < fencing_generation:
        return (
            f"old master {old_master} has not acknowledged generation {fencing_generation} "
            f"(it is at {document.acknowledged_state_generation})"
        )
    if document.fencing_problem is not None:
        return f"old master {old_master} {document.fencing_problem}"
    return None


def abandoned_target_blockers(progress: Progress, old_master: str | None) -> list[str]:
    """Keepers whose promotion was abandoned and that may still complete it."""
    operation = progress.state.operation
    if operation is None:
        return []
    generation = operation.phase_generation or progress.state.generation
    blockers = []
    for name in operation.abandoned_targets:
        document = progress.keeper(name)
        if name == old_master or document is None:
            continue  # checked as the old master, or its lease expired (it fenced itself)
        if document.acknowledged_state_generation < generation:
            blockers.append(
                f"{name}, whose promotion was abandoned, has not acknowledged generation "
                f"{generation} (it is at {document.acknowledged_state_generation})"
            )
        elif document.fencing_problem is not None:
            blockers.append(f"{name}, whose promotion was abandoned, {document.fencing_problem}")
    return blockers


def other_writers(progress: Progress, old_master: str | None) -> list[str]:
    """Other keepers of the cluster that report a PostgreSQL accepting writes."""
    writers = []
    for name in sorted(progress.state.assignments):
        document = progress.keeper(name)
        if name != old_master and document is not None and document.fencing_problem:
            writers.append(name)
    return writers


def promotion_blockers(progress: Progress, old_master: str | None) -> list[str]:
    """Everything that must happen before a new master may be assigned."""
    blockers = []
    waiting = unacknowledged_proxies(progress)
    if waiting:
        generation = progress.state.proxy_target.proxy_generation
        blockers.append(
            f"proxies {', '.join(waiting)} have not acknowledged proxy generation {generation}"
        )
    old_master_problem = old_master_blocker(progress, old_master)
    if old_master_problem is not None:
        blockers.append(old_master_problem)
    blockers.extend(abandoned_target_blockers(progress, old_master))
    blockers.extend(progress_hold_blockers(progress))
    writers = other_writers(progress, old_master)
    if writers:
        blockers.append(f"{', '.join(writers)} report a PostgreSQL that may accept writes")
    return blockers
