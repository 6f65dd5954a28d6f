"""decide(): new keepers, old master rejoin, failed standbys, dead keeper removal."""

from __future__ import annotations

import pytest

from rhizome.sentinel.decision import decide
from rhizome.spec import ClusterSpec
from rhizome.store.state import ClusterState, KeeperAssignment
from tests.unit.sentinel_builders import (
    GENERATION,
    MIB,
    NOW,
    observe,
    primary,
    roles,
    spec,
    standby,
    state,
    stopped,
)

DAY = 86400.0


def test_a_new_keeper_joins_as_a_standby_of_the_master() -> None:
    keepers = [
        primary("pg1"),
        standby("pg2"),
        standby("pg3"),
        stopped("pg4", system_identifier=None),
    ]
    result = decide(observe(spec(), state(), keepers)).state
    assert roles(result)["pg4"] == "standby>pg1" and result.generation == GENERATION + 1


def test_the_old_master_rejoins_as_a_standby_when_its_keeper_is_back() -> None:
    cluster = state("pg2", ("pg3",), fenced=("pg1",))
    keepers = [stopped("pg1", ack=GENERATION), primary("pg2"), standby("pg3")]
    result = decide(observe(spec(), cluster, keepers)).state
    assert roles(result) == {"pg1": "standby>pg2", "pg2": "master", "pg3": "standby>pg2"}


def test_a_fenced_old_master_stays_fenced_while_its_keeper_is_gone() -> None:
    cluster = state("pg2", ("pg3",), fenced=("pg1",))
    result = decide(observe(spec(), cluster, [primary("pg2"), standby("pg3")])).state
    assert roles(result)["pg1"] == "fenced" and result.generation == GENERATION


def test_a_missing_standby_stays_assigned() -> None:
    result = decide(observe(spec(), state(), [primary("pg1"), standby("pg2")])).state
    assert roles(result)["pg3"] == "standby>pg1"
    assert result.missing_keepers_since == {"pg3": NOW}
    assert result.generation == GENERATION


def test_a_standby_following_another_keeper_is_pointed_at_the_master() -> None:
    cluster = state().with_changes(
        assignments={
            **state().assignments,
            "pg3": KeeperAssignment(role="standby", follow="pg2"),
        }
    )
    result = decide(observe(spec(), cluster, [primary("pg1"), standby("pg2"), standby("pg3")]))
    assert roles(result.state)["pg3"] == "standby>pg1"


REMOVALS = {
    "dead for less than the delay: kept": (spec(), state(), DAY - 1, True),
    "dead for the delay: dropped": (spec(), state(), DAY, False),
    "0 never removes": (spec(dead_keeper_removal_after=0.0), state(), 30 * DAY, True),
    "a shorter delay": (spec(dead_keeper_removal_after=600.0), state(), 600.0, False),
    "a keeper in maintenance is kept": (
        spec(keepers={"pg3": {"maintenance": True}}),
        state(),
        30 * DAY,
        True,
    ),
    "a synchronous standby is kept": (
        spec(sync=True),
        state(synchronous=(("pg3",), ("pg3",))),
        30 * DAY,
        True,
    ),
    "a dead fenced old master is dropped too": (
        spec(),
        state("pg1", ("pg2",), fenced=("pg3",)),
        DAY,
        False,
    ),
}


@pytest.mark.parametrize(
    ("cluster_spec", "cluster_state", "dead_for", "kept"), REMOVALS.values(), ids=REMOVALS.keys()
)
def test_dead_keeper_removal(
    cluster_spec: ClusterSpec, cluster_state: ClusterState, dead_for: float, kept: bool
) -> None:
    cluster_state = cluster_state.with_changes(missing_keepers_since={"pg3": NOW - dead_for})
    keepers = [primary("pg1", synchronous_standby_names=("pg3",)), standby("pg2")]
    result = decide(observe(cluster_spec, cluster_state, keepers)).state
    assert ("pg3" in result.assignments) is kept
    if not kept:
        assert result.generation == GENERATION + 1 and "pg3" not in result.missing_keepers_since


def test_the_master_is_never_removed() -> None:
    cluster = state(missing_keepers_since={"pg1": NOW - 30 * DAY})
    keepers = [standby("pg2", running=False), standby("pg3", running=False)]
    result = decide(observe(spec(), cluster, keepers)).state
    assert result.master == "pg1" and "pg1" in result.assignments
    assert result.no_promotion_reason is not None


def test_a_removed_keeper_that_comes_back_rejoins_as_a_new_standby() -> None:
    cluster = state(missing_keepers_since={"pg3": NOW - DAY})
    keepers = [primary("pg1"), standby("pg2")]
    removed = decide(observe(spec(), cluster, keepers)).state
    assert "pg3" not in removed.assignments
    back = decide(observe(spec(), removed, [*keepers, standby("pg3")], now=NOW + 10)).state
    assert roles(back)["pg3"] == "standby>pg1"


def test_a_removed_assignment_rejoins_once_its_keeper_acknowledged_the_removal() -> None:
    cluster = state().with_changes(
        assignments={**state().assignments, "pg3": KeeperAssignment(role="removed")}
    )
    unaware = [primary("pg1"), standby("pg2"), stopped("pg3", ack=GENERATION - 1)]
    assert decide(observe(spec(), cluster, unaware)).state is cluster
    aware = [primary("pg1"), standby("pg2"), stopped("pg3", ack=GENERATION)]
    assert roles(decide(observe(spec(), cluster, aware)).state)["pg3"] == "standby>pg1"
    gone = decide(observe(spec(), cluster, [primary("pg1"), standby("pg2")])).state
    assert "pg3" not in gone.assignments


def test_the_operator_removes_a_standby() -> None:
    removal = spec(keepers={"pg3": {"removed": True}})
    keepers = [primary("pg1"), standby("pg2"), standby("pg3")]
    result = decide(observe(removal, state(), keepers)).state
    assert roles(result)["pg3"] == "removed" and result.generation == GENERATION + 1
    down = decide(observe(removal, result, keepers[:2], now=NOW + 60)).state
    assert roles(down)["pg3"] == "removed" and down.missing_keepers_since == {}


def test_the_operator_cannot_remove_the_master() -> None:
    removal = spec(keepers={"pg1": {"removed": True}})
    cluster = state()
    result = decide(observe(removal, cluster, [primary("pg1"), standby("pg2"), standby("pg3")]))
    assert result.state is cluster


def test_a_removed_synchronous_standby_is_replaced_before_it_is_removed() -> None:
    removal = spec(sync=True, keepers={"pg2": {"removed": True}})
    cluster = state(synchronous=(("pg2",), ("pg2",)))
    streaming = ("pg2", "pg3")
    keepers = [
        primary("pg1", synchronous_standby_names=("pg2",), streaming_standbys=streaming),
        standby("pg2"),
        standby("pg3"),
    ]
    adding = decide(observe(removal, cluster, keepers)).state
    assert adding.synchronous_standbys.requested == ("pg2", "pg3")
    assert roles(adding)["pg2"] == "standby>pg1"
    keepers[0] = primary(
        "pg1", synchronous_standby_names=("pg2", "pg3"), streaming_standbys=streaming
    )
    removing = decide(observe(removal, adding, keepers)).state
    assert removing.synchronous_standbys.requested == ("pg3",)
    keepers[0] = primary("pg1", synchronous_standby_names=("pg3",), streaming_standbys=streaming)
    removed = decide(observe(removal, removing, keepers)).state
    assert removed.synchronous_standbys.promotable == {"pg3"}
    assert roles(removed)["pg2"] == "removed"


def test_a_keeper_being_removed_is_never_promoted() -> None:
    removal = spec(keepers={"pg2": {"removed": True}})
    # still in the synchronous set, so not removed yet: but never promoted
    cluster = state(synchronous=(("pg2",), ("pg2",)))
    keepers = [standby("pg2", 100 * MIB), standby("pg3", 99 * MIB)]
    fencing = decide(observe(removal, cluster, keepers)).state
    promoted = decide(observe(removal, fencing, keepers, now=NOW + 1)).state
    assert promoted.master == "pg3"


def test_removing_the_last_standbys_of_a_lost_master_leaves_nobody_to_promote() -> None:
    removal = spec(keepers={"pg2": {"removed": True}, "pg3": {"removed": True}})
    result = decide(observe(removal, state(), [standby("pg2"), standby("pg3")])).state
    assert result.operation is None and roles(result)["pg2"] == "removed"
    assert result.no_promotion_reason is not None
    assert result.no_promotion_reason.endswith("no standby is assigned")
