"""The cluster at one store revision as plain data, with its health (pure).

This is what `rhizome.pg.cluster_info` returns. It is built from the same
pieces as `rhizomectl status` (`status_report`, `keeper_statuses`, whose lag
comes from `rhizome.store.positions`).

The cluster is healthy when exactly one keeper is master, its keeper is alive
and its PostgreSQL accepts writes; every other keeper that is neither in
maintenance nor removed is alive and streaming from the master; and every
store document is usable. `problems` says, in words, each reason it is not.
"""

from __future__ import annotations

from typing import Any

from rhizome.cli.keeper_status import KeeperStatus, keeper_statuses
from rhizome.cli.status import status_report
from rhizome.store.documents import ClusterState
from rhizome.store.view import ClusterView


def cluster_summary(view: ClusterView, cluster: str) -> dict[str, Any]:
    """Master, standbys, synchronous set, agents, pending restarts, problems and health."""
    report = status_report(view, cluster)
    state = view.state.document if view.state else None
    statuses = keeper_statuses(view)
    master = next((status for status in statuses if state and status.name == state.master), None)
    others = [status for status in statuses if status is not master]
    problems = [str(problem) for problem in view.problems]
    problems += cluster_problems(view, state, master) + standby_problems(others, master)
    master_info = master.observation if master else None
    return {
        "cluster": cluster,
        "store_revision": view.revision,
        "spec_revision": report["spec_revision"],
        "state_generation": state.generation if state else None,
        "master": state.master if state else None,
        "master_host": master_info.host if master_info else None,
        "master_port": master_info.port if master_info else None,
        "standbys": [standby_summary(status, master) for status in others],
        "synchronous": synchronous_summary(view, state),
        "paused": report["paused"],
        "operation": report["state"]["operation"] if report["state"] else None,
        "pending_commands": sorted(report["pending_commands"]),
        "sentinel_leader": report["sentinel_leader"],
        "proxy_generation": state.proxy_target.proxy_generation if state else None,
        "proxies": {
            name: proxy["acknowledged_proxy_generation"]
            for name, proxy in report["proxies"].items()
        },
        "pending_restart": [
            status.name
            for status in statuses
            if status.observation is not None and status.observation.pending_restart
        ],
        "problems": problems,
        "healthy": not problems,
    }


def standby_summary(status: KeeperStatus, master: KeeperStatus | None) -> dict[str, Any]:
    """One keeper other than the master (a standby, or fenced, removed, unassigned)."""
    info = status.observation
    return {
        "name": status.name,
        "role": status.assigned_role,
        "follow": status.follow,
        "host": info.host if info else None,
        "port": info.port if info else None,
        "state": status.state_words(),
        "alive": status.alive,
        "streaming": is_streaming(status, master),
        "lag_bytes": status.lag_bytes,
        "synchronous": status.synchronous == "sync",
        "maintenance": status.settings.maintenance,
        "removed": is_removed(status),
        "pending_restart": list(info.pending_restart) if info else [],
    }


def is_streaming(status: KeeperStatus, master: KeeperStatus | None) -> bool:
    """A running standby of the master that the master reports streaming to it."""
    info = status.observation
    master_info = master.observation if master else None
    return (
        master is not None
        and master_info is not None
        and info is not None
        and status.assigned_role == "standby"
        and status.follow == master.name
        and info.running
        and info.role == "standby"
        and status.name in master_info.streaming_standbys
    )


def is_removed(status: KeeperStatus) -> bool:
    return status.removal_requested or status.assigned_role == "removed"


def synchronous_summary(view: ClusterView, state: ClusterState | None) -> dict[str, Any]:
    standbys = state.synchronous_standbys if state else None
    return {
        "enabled": view.spec is not None and view.spec.document.synchronous_replication.enabled,
        "requested": list(standbys.requested) if standbys else [],
        "confirmed": list(standbys.confirmed) if standbys else [],
    }


def cluster_problems(
    view: ClusterView, state: ClusterState | None, master: KeeperStatus | None
) -> list[str]:
    """What is wrong with the spec, the state and the master."""
    problems = []
    if view.spec is None:
        problems.append("the cluster has no spec yet: apply one (rhizomectl init)")
    if state is None:
        return [*problems, "no sentinel has published a state yet"]
    if state.master is None:
        reason = f": {state.no_promotion_reason}" if state.no_promotion_reason else ""
        return [*problems, f"the cluster has no master{reason}"]
    info = master.observation if master else None
    if info is None:
        problems.append(f"master {state.master} is down: its keeper does not report")
    elif not info.accepts_writes:
        words = ", ".join(master.state_words()) if master else ""
        problems.append(f"master {state.master} does not accept writes ({words})")
    return problems


def standby_problems(others: list[KeeperStatus], master: KeeperStatus | None) -> list[str]:
    """Keepers that should be streaming from the master and are not, or that accept writes."""
    problems = []
    for status in others:
        info = status.observation
        if info is not None and info.accepts_writes:
            problems.append(f"keeper {status.name} accepts writes but is not the master")
        elif status.settings.maintenance or is_removed(status):
            continue
        elif info is None:
            problems.append(f"standby {status.name} is down: its keeper does not report")
        elif master is not None and not is_streaming(status, master):
            words = ", ".join(status.state_words())
            problems.append(f"standby {status.name} is not streaming from {master.name} ({words})")
    return problems
