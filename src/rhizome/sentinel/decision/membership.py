"""Who is part of the cluster, outside operations.

- A new live keeper becomes a standby of the master.
- A fenced old master whose keeper is back rejoins as a standby of the master
  (its keeper rewinds or re-clones it when it diverged).
- Every standby follows the master (no cascading).
- The operator's removal wish (spec keepers.<name>.removed) assigns `removed`,
  never to the master and not while the keeper is in the synchronous set.
  A removed keeper whose wish was cleared rejoins as a standby once its keeper
  has acknowledged the removal (it then never reuses its old data); one that
  is not live is dropped from the assignments.
- A keeper dead for longer than dead_keeper_removal_after (0: never) is
  dropped from the assignments: its replication slot is freed. Never the
  master, a keeper in maintenance, nor a member of the synchronous set. If it
  ever comes back it joins as a new standby.
"""

from __future__ import annotations

from rhizome.sentinel.decision.model import Progress
from rhizome.store.state import KeeperAssignment

REMOVED = KeeperAssignment(role="removed")


def maintain_membership(progress: Progress) -> None:
    """Apply every membership rule to the assignments (one change)."""
    master = progress.state.master
    assert master is not None
    assignments = dict(progress.state.assignments)
    standby = KeeperAssignment(role="standby", follow=master)
    for name in sorted(set(assignments) | set(progress.observation.keepers)):
        if name == master:
            continue
        updated = next_assignment(progress, name, assignments.get(name), standby)
        if updated is None:
            assignments.pop(name, None)
        else:
            assignments[name] = updated
    if assignments != progress.state.assignments:
        progress.change(assignments=assignments)


def next_assignment(
    progress: Progress,
    name: str,
    current: KeeperAssignment | None,
    standby: KeeperAssignment,
) -> KeeperAssignment | None:
    """The assignment of keeper `name` (not the master); None drops it."""
    live = progress.keeper(name) is not None
    if progress.removal_requested(name):
        return removal(progress, name, current)
    if current is None:
        if live:
            progress.note(f"keeper {name} joins as a standby of {standby.follow}")
            return standby
        return None
    if current.role == "removed":
        return readmission(progress, name, current, standby)
    if current.role == "fenced" and live:
        progress.note(f"old master {name} is back: it rejoins as a standby of {standby.follow}")
        return standby
    if dead_for_too_long(progress, name):
        progress.note(f"keeper {name} was dead for too long: it leaves the cluster")
        return None
    if current.role == "standby" and current.follow != standby.follow:
        return standby
    return current


def removal(progress: Progress, name: str, current: KeeperAssignment | None) -> KeeperAssignment:
    """The operator asked to remove `name`: assign `removed` once it is out of the sync set."""
    if current is not None and current.role == "removed":
        return current
    if current is not None and in_synchronous_set(progress, name):
        progress.note(f"keeper {name}: removal waits until it left the synchronous set")
        return current
    progress.note(f"keeper {name} is removed from the cluster (spec setting)")
    return REMOVED


def readmission(
    progress: Progress, name: str, current: KeeperAssignment, standby: KeeperAssignment
) -> KeeperAssignment | None:
    """A removed keeper whose removal was undone."""
    document = progress.keeper(name)
    if document is None:
        progress.note(f"keeper {name}: removal undone while it is down; its assignment is dropped")
        return None
    if document.acknowledged_state_generation < progress.state.generation:
        progress.note(f"keeper {name}: waiting for it to acknowledge its removal before rejoining")
        return current
    progress.note(f"keeper {name} rejoins as a standby of {standby.follow} (new base backup)")
    return standby


def in_synchronous_set(progress: Progress, name: str) -> bool:
    standbys = progress.state.synchronous_standbys
    return name in standbys.requested or name in standbys.confirmed


def dead_for_too_long(progress: Progress, name: str) -> bool:
    """The keeper's document has been missing for longer than dead_keeper_removal_after."""
    delay = progress.spec.dead_keeper_removal_after
    since = progress.state.missing_keepers_since.get(name)
    if delay <= 0 or since is None or not progress.waited(since, delay):
        return False
    return not (progress.settings(name).maintenance or in_synchronous_set(progress, name))
