"""Timers in `state` survive a change of leader whose clock disagrees (P1 hole 9).

Leader 1 writes the timers with its clock; leader 2's clock is 30 s ahead or
behind. Leader 2's first decisions re-arm every timer to its own `now`: no
timer fires early, and each still fires after its full length.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.sentinel.leader_clock import LeaderClock
from tests.unit.sentinel_builders import (
    GENERATION,
    NOW,
    PROXY_GENERATION,
    command,
    later,
    observe,
    primary,
    proxy,
    spec,
    standby,
    state,
    step,
    stopped,
)

SKEWS = pytest.mark.parametrize("skew", [30.0, -30.0], ids=["ahead", "behind"])


def new_leader(observation: ClusterObservation, elapsed: float, skew: float) -> ClusterObservation:
    """The same cluster `elapsed` s later, decided by a leader whose clock is off by `skew`."""
    return replace(observation, now=observation.now + elapsed + skew, rearm_timers=True)


def under_new_leader(observation: ClusterObservation, seconds: float) -> ClusterObservation:
    """Later decisions of the new leader (its first decision has been stored)."""
    return replace(later(observation, seconds), rearm_timers=False)


class FakeTime:
    def __init__(self, wall: float, monotonic: float) -> None:
        self.wall_time, self.monotonic_time = wall, monotonic

    def wall(self) -> float:
        return self.wall_time

    def monotonic(self) -> float:
        return self.monotonic_time


def test_the_leader_clock_never_steps_during_a_leadership() -> None:
    fake = FakeTime(wall=NOW, monotonic=50.0)
    leader_clock = LeaderClock(wall=fake.wall, monotonic=fake.monotonic)
    assert leader_clock.reading((7, 1)) == (NOW, True)
    fake.wall_time, fake.monotonic_time = NOW - 30, 52.0  # the wall clock is stepped back
    assert leader_clock.reading((7, 1)) == (NOW + 2, True)
    leader_clock.decision_stored()
    assert leader_clock.reading((7, 1)) == (NOW + 2, False)
    fake.monotonic_time = 53.0
    assert leader_clock.reading((9, 1)) == (NOW - 30, True)  # a new leadership


@SKEWS
def test_a_missing_master_is_not_failed_over_early_nor_late(skew: float) -> None:
    cluster_spec = spec(timing={"failover_delay": 5.0})
    keepers = [standby("pg2"), standby("pg3")]
    _, observation = step(observe(cluster_spec, state(), keepers, [proxy("p1")]))
    assert observation.state is not None
    assert observation.state.missing_keepers_since == {"pg1": NOW}
    decision, observation = step(new_leader(observation, 2.0, skew))
    assert decision.state.operation is None, "failed over early"
    assert decision.state.generation == GENERATION  # re-arming is no topology change
    assert decide(observation).state is decision.state  # idempotent
    assert decide(under_new_leader(observation, 4.9)).state.operation is None
    fired = decide(under_new_leader(observation, 5.0)).state
    assert fired.operation is not None and fired.operation.phase == "fencing"


@SKEWS
def test_a_crashed_master_waits_its_grace_under_the_new_leader(skew: float) -> None:
    keepers = [stopped("pg1", ack=GENERATION), standby("pg2"), standby("pg3")]
    _, observation = step(observe(spec(), state(), keepers, [proxy("p1")]))
    decision, observation = step(new_leader(observation, 0.5, skew))
    assert decision.state.operation is None, "failed over early"
    assert decide(under_new_leader(observation, 0.9)).state.operation is None
    assert decide(under_new_leader(observation, 1.0)).state.operation is not None


@SKEWS
def test_a_switchover_is_not_abandoned_early_nor_late(skew: float) -> None:
    healthy = [primary("pg1"), standby("pg2"), standby("pg3")]
    requested = observe(
        spec(), state(), healthy, [proxy("p1")], commands=[command("c1", "switchover", "pg2")]
    )
    _, observation = step(requested)
    acknowledged = [proxy("p1", PROXY_GENERATION + 1)]
    decision, observation = step(later(observation, 0.1, proxies=acknowledged))
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "blocking"
    decision, observation = step(new_leader(observation, 10.0, skew))
    assert decision.state.operation is not None, "abandoned early"
    assert decision.state.operation.phase == "blocking"
    assert decision.state.generation == GENERATION + 2  # re-arming is no topology change
    assert decide(under_new_leader(observation, 14.9)).state.operation is not None
    given_up = decide(under_new_leader(observation, 15.0)).state
    assert given_up.operation is None and given_up.command_results[-1].outcome == "abandoned"


@SKEWS
def test_a_dead_keeper_is_not_dropped_early_nor_late(skew: float) -> None:
    cluster_spec = spec(dead_keeper_removal_after=60.0)
    keepers = [primary("pg1"), standby("pg2")]
    _, observation = step(observe(cluster_spec, state(), keepers, [proxy("p1")]))
    assert observation.state is not None
    assert observation.state.missing_keepers_since == {"pg3": NOW}
    decision, observation = step(new_leader(observation, 40.0, skew))
    assert "pg3" in decision.state.assignments, "dropped early"
    assert "pg3" in decide(under_new_leader(observation, 59.9)).state.assignments
    assert "pg3" not in decide(under_new_leader(observation, 60.0)).state.assignments
