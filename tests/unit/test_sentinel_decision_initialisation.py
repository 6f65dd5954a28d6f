"""decide(): initialisation of a new cluster or of an existing data directory."""

from __future__ import annotations

from typing import Any

import pytest

from rhizome.sentinel.decision import decide
from rhizome.store.state import ClusterState
from tests.unit.sentinel_builders import (
    MIB,
    SYSTEM_ID,
    later,
    observe,
    primary,
    proxy,
    roles,
    spec,
    standby,
    step,
    stopped,
)


def test_nothing_to_do_without_keepers() -> None:
    decision = decide(observe(spec(), None, []))
    assert decision.state == ClusterState() and decision.state.generation == 0
    assert decision.notes == ("initialisation: waiting for a live keeper",)


@pytest.mark.parametrize(
    ("spec_changes", "live", "expected"),
    [
        pytest.param({}, ["pg2", "pg1", "pg3"], "pg1", id="first live keeper by name"),
        pytest.param({}, ["pg3", "pg2"], "pg2", id="first of those alive"),
        pytest.param({"initial_master": "pg3"}, ["pg1", "pg3"], "pg3", id="spec initial_master"),
        pytest.param(
            {"keepers": {"pg1": {"maintenance": True}}}, ["pg1", "pg2"], "pg2", id="maintenance"
        ),
        pytest.param(
            {"init_mode": "existing", "initial_master": "pg2"},
            ["pg1", "pg2"],
            "pg2",
            id="init_mode existing",
        ),
    ],
)
def test_first_master_is_assigned(
    spec_changes: dict[str, Any], live: list[str], expected: str
) -> None:
    keepers = [stopped(name, None, system_identifier=None, ack=0) for name in live]
    decision = decide(observe(spec(**spec_changes), None, keepers))
    result = decision.state
    assert result.master == expected and result.generation == 1
    assert roles(result) == {expected: "master"}
    assert result.operation is not None and result.operation.kind == "initialisation"
    assert result.operation.phase_generation == 1
    assert not result.initialized and result.proxy_target.routes_nowhere


def test_named_initial_master_is_waited_for() -> None:
    decision = decide(observe(spec(initial_master="pg3"), None, [stopped("pg1", ack=0)]))
    assert decision.state.master is None
    assert decision.notes == ("initialisation: waiting for pg3",)


def test_initialisation_end_to_end() -> None:
    keepers = [stopped(name, None, system_identifier=None, ack=0) for name in ("pg1", "pg2")]
    decision, observation = step(observe(spec(), None, keepers, [proxy("p1", 0)]))
    leftover = primary("pg1", 5 * MIB, ack=0)  # a running primary from before: not ours yet
    decision, observation = step(later(observation, 1.0, keepers=[leftover, keepers[1]]))
    assert not decision.state.initialized and decision.state.generation == 1
    ready = primary("pg1", 5 * MIB, ack=1)
    decision, observation = step(later(observation, 1.0, keepers=[ready, keepers[1]]))
    result = decision.state
    assert result.initialized and result.operation is None and result.generation == 2
    assert roles(result) == {"pg1": "master", "pg2": "standby>pg1"}
    assert result.proxy_target.master == "pg1" and result.proxy_target.proxy_generation == 1
    assert result.system_identifier == SYSTEM_ID and result.master_timeline == 1
    entry = result.history[-1]
    assert (entry.kind, entry.old_master, entry.new_master, entry.generation) == (
        "initialisation",
        None,
        "pg1",
        2,
    )
    assert decide(observation).state is result
    later_keeper = standby("pg3", 5 * MIB)
    joined = decide(later(observation, 1.0, keepers=[ready, keepers[1], later_keeper])).state
    assert roles(joined)["pg3"] == "standby>pg1" and joined.generation == 3


def test_chosen_master_lost_before_reporting_is_replaced() -> None:
    keepers = [stopped(name, None, system_identifier=None, ack=0) for name in ("pg1", "pg2")]
    decision, observation = step(observe(spec(), None, keepers))
    assert decision.state.master == "pg1"
    decision, observation = step(later(observation, 2.0, keepers=[keepers[1]]))
    assert decision.state.master == "pg2" and roles(decision.state) == {"pg2": "master"}
    assert decision.state.generation == 2


def test_named_initial_master_lost_is_waited_for() -> None:
    keepers = [stopped(name, None, system_identifier=None, ack=0) for name in ("pg1", "pg2")]
    decision, observation = step(observe(spec(initial_master="pg1"), None, keepers))
    decision, observation = step(later(observation, 2.0, keepers=[keepers[1]]))
    assert decision.state.master == "pg1"
