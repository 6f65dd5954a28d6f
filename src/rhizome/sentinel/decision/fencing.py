"""Fencing before promotion (DESIGN §3.2).

A new master is assigned only when every live proxy has acknowledged the
proxy generation that routes nowhere, and no keeper of the cluster may still
accept writes: the old master's keeper is gone (its lease expired, so it
fenced itself) or it reports that it cannot accept writes with the fencing
generation acknowledged.
"""

from __future__ import annotations

from rhizome.sentinel.decision.model import Progress


def unacknowledged_proxies(progress: Progress) -> list[str]:
    """Live proxies that have not applied the current proxy generation."""
    generation = progress.state.proxy_target.proxy_generation
    return sorted(
        proxy_id
        for proxy_id, proxy in progress.observation.proxies.items()
        if proxy.acknowledged_proxy_generation < generation
    )


def old_master_blocker(progress: Progress, old_master: str | None) -> str | None:
    """Why the old master may still accept writes; None once it cannot."""
    document = progress.keeper(old_master)
    operation = progress.state.operation
    if document is None or operation is None:
        return None
    fencing_generation = operation.phase_generation or progress.state.generation
    if document.acknowledged_state_generation < fencing_generation:
        return (
            f"old master {old_master} has not acknowledged generation {fencing_generation} "
            f"(it is at {document.acknowledged_state_generation})"
        )
    if document.accepts_writes:
        return f"old master {old_master} still reports a primary that accepts writes"
    return None


def other_writers(progress: Progress, old_master: str | None) -> list[str]:
    """Other keepers of the cluster that report a PostgreSQL accepting writes."""
    writers = []
    for name in sorted(progress.state.assignments):
        document = progress.keeper(name)
        if name != old_master and document is not None and document.accepts_writes:
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
    writers = other_writers(progress, old_master)
    if writers:
        blockers.append(f"{', '.join(writers)} report a primary that accepts writes")
    return blockers
