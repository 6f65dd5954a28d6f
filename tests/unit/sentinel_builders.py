"""Terse builders for the sentinel decision tests: specs, states, keepers, proxies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from rhizome.sentinel.decision import ClusterObservation, Decision, decide
from rhizome.spec import ClusterSpec
from rhizome.store.documents import Command, KeeperInfo, ProxyInfo
from rhizome.store.state import (
    ClusterState,
    KeeperAssignment,
    ProxyTarget,
    SynchronousStandbys,
)
from rhizome.store.view import Stored

NOW = 1_700_000_000.0
SYSTEM_ID = "7300000000000000001"
MIB = 1024 * 1024
GENERATION = 10
PROXY_GENERATION = 4


def spec(
    *,
    sync: bool = False,
    min_standbys: int = 1,
    max_standbys: int = 1,
    lag: int = 16 * MIB,
    keepers: dict[str, dict[str, Any]] | None = None,
    **changes: Any,
) -> ClusterSpec:
    """A valid spec; `timing` may be given as a dict of changes."""
    timing = changes.pop("timing", {})
    data: dict[str, Any] = {
        "synchronous_replication": {
            "enabled": sync,
            "min_standbys": min_standbys,
            "max_standbys": max_standbys,
        },
        "max_standby_lag_bytes": lag,
        "keepers": keepers or {},
        "timing": timing,
        **changes,
    }
    return ClusterSpec.model_validate(data)


def keeper(
    name: str,
    role: str = "standby",
    position: int | None = 100 * MIB,
    *,
    running: bool = True,
    ack: int = GENERATION,
    **changes: Any,
) -> KeeperInfo:
    """A keeper document: a primary reports flush_lsn, a standby receive/replay."""
    data: dict[str, Any] = {
        "name": name,
        "host": f"db-{name}",
        "port": 5432,
        "observed_at": NOW,
        "running": running,
        "healthy": running,
        "role": role if running else "unknown",
        "timeline": 1,
        "system_identifier": SYSTEM_ID,
        "acknowledged_state_generation": ack,
        "fenced": not (running and role == "primary"),
    }
    if role == "primary" or not running:
        data["flush_lsn"] = position
    else:
        data["receive_lsn"] = position
        data["replay_lsn"] = position
    data.update(changes)
    return KeeperInfo.model_validate(data)


def primary(name: str, position: int | None = 100 * MIB, **changes: Any) -> KeeperInfo:
    return keeper(name, "primary", position, **changes)


def standby(name: str, position: int | None = 100 * MIB, **changes: Any) -> KeeperInfo:
    return keeper(name, "standby", position, **changes)


def stopped(name: str, position: int | None = None, **changes: Any) -> KeeperInfo:
    """A keeper whose PostgreSQL is stopped (fenced), with its last position if given."""
    return keeper(name, "standby", position, running=False, **changes)


def proxy(proxy_id: str, ack: int = PROXY_GENERATION) -> ProxyInfo:
    return ProxyInfo(
        id=proxy_id,
        listen_addresses=("127.0.0.1:6432",),
        acknowledged_proxy_generation=ack,
        observed_at=NOW,
    )


def command(
    name: str = "cmd1",
    kind: str = "switchover",
    target: str | None = None,
    *,
    timeout: float | None = None,
    revision: int = 77,
    requested_at: float = NOW - 1,
) -> Stored[Command]:
    document = Command.model_validate(
        {
            "name": name,
            "kind": kind,
            "target": target,
            "requested_at": requested_at,
            "requested_by": "alice",
            "timeout": timeout,
        }
    )
    return Stored(document=document, mod_revision=revision)


def state(
    master: str | None = "pg1",
    standbys: Iterable[str] = ("pg2", "pg3"),
    *,
    synchronous: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
    fenced: Iterable[str] = (),
    **changes: Any,
) -> ClusterState:
    """An initialised cluster in steady state: `master` routed, standbys following it."""
    assignments: dict[str, KeeperAssignment] = {}
    if master is not None:
        assignments[master] = KeeperAssignment(role="master")
    for name in standbys:
        assignments[name] = KeeperAssignment(role="standby", follow=master)
    for name in fenced:
        assignments[name] = KeeperAssignment(role="fenced")
    target = ProxyTarget(proxy_generation=PROXY_GENERATION)
    if master is not None:
        target = ProxyTarget(
            proxy_generation=PROXY_GENERATION, master=master, host=f"db-{master}", port=5432
        )
    data: dict[str, Any] = {
        "generation": GENERATION,
        "initialized": True,
        "master": master,
        "assignments": assignments,
        "proxy_target": target,
        "synchronous_standbys": SynchronousStandbys(
            requested=synchronous[0], confirmed=synchronous[1]
        ),
        "master_timeline": 1,
        "system_identifier": SYSTEM_ID,
        "master_flush_lsn": 100 * MIB,
        **changes,
    }
    return ClusterState.model_validate(data)


def observe(
    cluster_spec: ClusterSpec | None = None,
    cluster_state: ClusterState | None = None,
    keepers: Iterable[KeeperInfo] = (),
    proxies: Iterable[ProxyInfo] = (),
    *,
    commands: Iterable[Stored[Command]] = (),
    now: float = NOW,
) -> ClusterObservation:
    return ClusterObservation(
        spec=cluster_spec if cluster_spec is not None else spec(),
        state=cluster_state,
        keepers={document.name: document for document in keepers},
        proxies={document.id: document for document in proxies},
        commands={stored.document.name: stored for stored in commands},
        now=now,
    )


def applied(observation: ClusterObservation, decision: Decision) -> ClusterObservation:
    """The observation after the sentinel wrote the decision and deleted finished commands."""
    finished = {name for name, _ in decision.finished_commands}
    commands = {name: item for name, item in observation.commands.items() if name not in finished}
    return replace(observation, state=decision.state, commands=commands)


def later(
    observation: ClusterObservation,
    seconds: float = 0.0,
    *,
    keepers: Iterable[KeeperInfo] | None = None,
    proxies: Iterable[ProxyInfo] | None = None,
) -> ClusterObservation:
    """The same cluster `seconds` later, with replaced keeper or proxy documents."""
    changes: dict[str, Any] = {"now": observation.now + seconds}
    if keepers is not None:
        changes["keepers"] = {document.name: document for document in keepers}
    if proxies is not None:
        changes["proxies"] = {document.id: document for document in proxies}
    return replace(observation, **changes)


def step(observation: ClusterObservation) -> tuple[Decision, ClusterObservation]:
    """Decide, and the observation with the decision applied."""
    decision = decide(observation)
    return decision, applied(observation, decision)


def roles(cluster_state: ClusterState) -> dict[str, str]:
    """Assignments in short form: {"pg1": "master", "pg2": "standby>pg1"}."""
    return {
        name: assignment.role + (f">{assignment.follow}" if assignment.follow else "")
        for name, assignment in cluster_state.assignments.items()
    }
