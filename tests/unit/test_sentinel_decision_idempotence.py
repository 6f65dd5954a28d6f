"""decide(): deciding again on the same observation, once applied, changes nothing."""

from __future__ import annotations

import pytest

from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.store.state import ClusterState, KeeperAssignment, ProxyTarget
from tests.unit.sentinel_builders import (
    MIB,
    applied,
    command,
    observe,
    primary,
    proxy,
    spec,
    standby,
    state,
    stopped,
)


def masterless() -> ClusterState:
    """An initialised state without master nor operation (e.g. edited by hand)."""
    fenced = KeeperAssignment(role="fenced")
    following = KeeperAssignment(role="standby", follow="pg1")
    return state().with_changes(
        master=None,
        assignments={"pg1": fenced, "pg2": following, "pg3": following},
        proxy_target=ProxyTarget(proxy_generation=4),
    )


def idempotence_scenarios() -> dict[str, ClusterObservation]:
    healthy = [primary("pg1"), standby("pg2"), standby("pg3")]
    return {
        "steady": observe(spec(), state(), healthy, [proxy("p1")]),
        "master lost, no proxy (fence and promote at once)": observe(spec(), state(), healthy[1:]),
        "master lost, proxies to wait for": observe(spec(), state(), healthy[1:], [proxy("p1")]),
        "lagging standbys only": observe(
            spec(), state(), [standby("pg2", 10 * MIB), standby("pg3", 20 * MIB)]
        ),
        "switchover without proxies": observe(
            spec(), state(), healthy, commands=[command("s1", "switchover", "pg2")]
        ),
        "refused command": observe(
            spec(), state(), healthy, commands=[command("s1", "switchover", "pg1")]
        ),
        "new cluster": observe(spec(), None, [stopped("pg1", None, system_identifier=None)]),
        "synchronous replication enabled": observe(
            spec(sync=True, max_standbys=2),
            state(),
            [primary("pg1", streaming_standbys=("pg2", "pg3")), standby("pg2"), standby("pg3")],
        ),
        "no master and no operation": observe(spec(), masterless(), healthy[1:]),
    }


@pytest.mark.parametrize("name", idempotence_scenarios().keys())
def test_deciding_twice_on_the_same_observation_changes_nothing(name: str) -> None:
    observation = idempotence_scenarios()[name]
    decision = decide(observation)
    again = decide(applied(observation, decision))
    assert again.state is decision.state
    assert again.finished_commands == ()


def test_a_state_without_master_nor_operation_fails_over() -> None:
    result = decide(observe(spec(), masterless(), [standby("pg2"), standby("pg3")])).state
    assert result.master == "pg2" and result.operation is not None
    assert result.operation.previous_master is None
