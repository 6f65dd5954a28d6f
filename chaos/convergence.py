"""Has the cluster converged? A pure check of one store view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg2

from chaos.client import connect, query
from rhizome.store.view import ClusterView
from tests.harness.cluster import close_quietly

STREAMING = (
    "SELECT NOT pg_is_in_recovery(), count(*) FROM pg_stat_replication WHERE state = 'streaming'"
)


def convergence_problems(
    view: ClusterView, keeper_names: Sequence[str], proxy_ids: Sequence[str]
) -> list[str]:
    """What keeps the view from "one master, every standby streaming on the master's
    timeline, every proxy acknowledging the current proxy generation"; empty when none."""
    if view.state is None:
        return ["no state"]
    target = view.state.document.proxy_target
    master = target.master
    keepers = {name: stored.document for name, stored in view.keepers.items()}
    if master is None or master not in keepers:
        return [f"no routed master (proxy target {master})"]
    master_info = keepers[master]
    if master_info.role != "primary" or not master_info.running:
        return [f"master {master} is {master_info.role}, running={master_info.running}"]
    problems = []
    streaming = set(master_info.streaming_standbys)
    for name in sorted(set(keeper_names) - {master}):
        info = keepers.get(name)
        if info is None:
            problems.append(f"{name}: no keeper document")
        elif info.role != "standby" or not info.running or name not in streaming:
            problems.append(f"{name}: {info.role}, running={info.running}, streaming="
                            f"{name in streaming}")  # fmt: skip
        elif info.timeline != master_info.timeline:
            problems.append(f"{name}: timeline {info.timeline} != {master_info.timeline}")
    for proxy_id in proxy_ids:
        stored = view.proxies.get(proxy_id)
        generation = None if stored is None else stored.document.acknowledged_proxy_generation
        if generation != target.proxy_generation:
            problems.append(f"{proxy_id}: acknowledged {generation}, "
                            f"current {target.proxy_generation}")  # fmt: skip
    return problems


def live_problems(cluster: Any, master: Any) -> list[str]:
    """What the servers themselves say (store documents can be up to 10 s old): the master
    is a primary with every standby streaming, and every proxy sends a write to it."""
    problems = _ask(master.address, master.keeper.port, cluster.password, STREAMING,
                    (True, len(cluster.nodes) - 1), f"master {master.name}")  # fmt: skip
    for node in cluster.nodes:
        problems += _ask(node.address, 6432, cluster.password,
                         "SELECT host(inet_server_addr()), NOT pg_is_in_recovery()",
                         (master.address, True), f"proxy {node.name}")  # fmt: skip
    return problems


def _ask(host: str, port: int, password: str, sql: str, expected: tuple[Any, ...],
         what: str) -> list[str]:  # fmt: skip
    connection = None
    try:
        connection = connect((host, port), password, 2.0)
        answer = tuple(query(connection, sql, (), 2.0)[0])
    except (psycopg2.Error, TimeoutError, OSError) as error:
        return [f"{what}: {str(error).strip() or type(error).__name__}"]
    finally:
        close_quietly(connection)
    return [] if answer == expected else [f"{what}: answered {answer}, expected {expected}"]
