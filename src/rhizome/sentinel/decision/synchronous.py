"""The synchronous standby set, changed in two phases (DESIGN §3.3).

The wanted set keeps the healthy members, fills free places up to
max_standbys with healthy standbys streaming from the master, and keeps
failed members while fewer than min_standbys healthy ones remain (commits
wait rather than run unprotected). A change first adds (requested =
confirmed + additions), is confirmed once the master reports the names in
effect, every added standby has caught up with the master's flush position
reported alongside and the master's WAL sender counts it as synchronous
(pg_stat_replication.sync_state, `synchronous_streaming`), then removes
(requested = confirmed - removals) and is confirmed again. Only members of both sets are promotable.
"""

from __future__ import annotations

from rhizome.sentinel.decision.model import Progress
from rhizome.store.documents import KeeperInfo
from rhizome.store.state import SynchronousStandbys


def maintain_synchronous_set(progress: Progress) -> None:
    """Move the synchronous set one step towards the wanted set."""
    master = progress.keeper(progress.state.master)
    if master is None or master.role != "primary" or not master.running:
        return
    if progress.state.synchronous_standbys.settled:
        start_change(progress, master)
    else:
        advance_change(progress, master)


def is_good_member(progress: Progress, name: str, master: KeeperInfo) -> bool:
    """A healthy standby of the master, streaming from it, free of operator holds."""
    assignment = progress.state.assignment_of(name)
    document = progress.keeper(name)
    return (
        assignment is not None
        and assignment.role == "standby"
        and assignment.follow == progress.state.master
        and document is not None
        and document.running
        and document.healthy
        and document.role == "standby"
        and name in master.streaming_standbys
        and not progress.settings(name).maintenance
        and not progress.removal_requested(name)
    )


def ranked(progress: Progress, names: list[str]) -> list[str]:
    """Preferred synchronous standbys first: promotable ones, higher priority, name."""
    return sorted(
        names,
        key=lambda name: (
            progress.settings(name).no_failover,
            -progress.settings(name).priority,
            name,
        ),
    )


def current_members(progress: Progress) -> list[str]:
    standbys = progress.state.synchronous_standbys
    return sorted(set(standbys.requested) | set(standbys.confirmed))


def wanted_set(progress: Progress, master: KeeperInfo) -> set[str]:
    """The synchronous set the cluster should converge to."""
    settings = progress.spec.synchronous_replication
    if not settings.enabled:
        return set()
    members = current_members(progress)
    standbys = progress.state.keepers_with_role("standby")
    good = [name for name in standbys if is_good_member(progress, name, master)]
    kept = ranked(progress, [name for name in members if name in good])[: settings.max_standbys]
    free = settings.max_standbys - len(kept)
    fill = ranked(progress, [name for name in good if name not in kept])[:free]
    wanted = kept + fill
    assigned = progress.state.keepers_with_role("standby") + progress.state.keepers_with_role(
        "fenced"
    )
    failed = [name for name in members if name not in wanted and name in assigned]
    missing = max(0, settings.min_standbys - len(wanted))
    return set(wanted) | set(failed[:missing])


def start_change(progress: Progress, master: KeeperInfo) -> None:
    """From a settled set: add what is wanted first, remove only once nothing is to add."""
    confirmed = set(progress.state.synchronous_standbys.confirmed)
    wanted = wanted_set(progress, master)
    additions = wanted - confirmed
    removals = confirmed - wanted
    if additions:
        requested = confirmed | additions
        progress.note(f"synchronous set: adding {', '.join(sorted(additions))}")
    elif removals:
        requested = confirmed - removals
        progress.note(f"synchronous set: removing {', '.join(sorted(removals))}")
    else:
        return
    progress.change(
        synchronous_standbys=SynchronousStandbys(
            requested=tuple(sorted(requested)), confirmed=tuple(sorted(confirmed))
        )
    )


def caught_up(progress: Progress, name: str, master: KeeperInfo) -> bool:
    """The standby holds everything the master had flushed when it reported its names."""
    document = progress.keeper(name)
    return (
        document is not None
        and document.wal_position is not None
        and master.flush_lsn is not None
        and document.wal_position >= master.flush_lsn
    )


def synchronous_on_master(master: KeeperInfo, name: str) -> bool:
    """The master's WAL sender for `name` counts it as synchronous (commits wait for it).

    The names in effect come from the keeper's own session; only the WAL
    senders' sync_state shows that the master really waits for the standby.
    A keeper older than the report is taken at its names, as before.
    """
    return master.synchronous_streaming is None or name in master.synchronous_streaming


def advance_change(progress: Progress, master: KeeperInfo) -> None:
    """Confirm the change in flight, or cancel additions no longer wanted."""
    standbys = progress.state.synchronous_standbys
    requested = set(standbys.requested)
    additions = requested - set(standbys.confirmed)
    in_effect = set(master.synchronous_standby_names) == requested
    if (
        in_effect
        and all(caught_up(progress, name, master) for name in additions)
        and all(synchronous_on_master(master, name) for name in additions)
    ):
        progress.change(synchronous_standbys=standbys.with_changes(confirmed=standbys.requested))
        progress.note(f"synchronous set confirmed: {', '.join(sorted(requested)) or 'none'}")
        return
    stale = additions - wanted_set(progress, master)
    if stale:
        remaining = tuple(sorted(requested - stale))
        progress.change(synchronous_standbys=standbys.with_changes(requested=remaining))
        progress.note(f"synchronous set: no longer adding {', '.join(sorted(stale))}")
        return
    progress.note(
        f"synchronous set: waiting for master {progress.state.master} to apply "
        f"{', '.join(sorted(requested)) or 'none'}"
        + (
            f" and {', '.join(sorted(additions))} to catch up and stream synchronously"
            if additions
            else ""
        )
    )


def synchronous_set_for_new_master(
    progress: Progress, new_master: str, old_master: str | None
) -> SynchronousStandbys:
    """The set a newly promoted master starts with: nothing confirmed yet.

    The previous members stay listed (they hold every acknowledged commit and
    will follow the new master). When fewer than min_standbys remain, other
    standbys and at last the old master are listed too, so that commits wait
    for a synchronous standby rather than run unprotected.
    """
    settings = progress.spec.synchronous_replication
    if not settings.enabled:
        return SynchronousStandbys()
    names = [name for name in progress.state.synchronous_standbys.requested if name != new_master]
    others = ranked(
        progress,
        [name for name in progress.state.keepers_with_role("standby") if name != new_master],
    )
    if old_master is not None and old_master != new_master:
        others.append(old_master)
    for name in others:
        if len(names) >= settings.min_standbys:
            break
        if name not in names:
            names.append(name)
    return SynchronousStandbys(requested=tuple(sorted(names)), confirmed=())
