"""decide(): a promotion that never completes is abandoned, its target fenced first."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.spec import ClusterSpec, TimingSettings
from rhizome.store.documents import KeeperInfo
from tests.unit.sentinel_builders import (
    GENERATION,
    MIB,
    PROXY_GENERATION,
    command,
    later,
    observe,
    primary,
    proxy,
    roles,
    spec,
    standby,
    state,
    step,
    stopped,
)

DEADLINE = 11.0  # master_recovery_grace 1 + 2 * keeper_lease_ttl 5
PROMOTED_GENERATION = GENERATION + 1  # no live proxy: fenced and promoted in one decision
ABANDONED_GENERATION = GENERATION + 2
STANDBYS = [standby("pg2", 100 * MIB), standby("pg3", 99 * MIB)]


def promoting(
    cluster_spec: ClusterSpec | None = None,
    keepers: list[KeeperInfo] | None = None,
    **changes: object,
) -> ClusterObservation:
    """pg1's lease expired; pg2 was told to promote at once (no live proxy to wait for)."""
    cluster_spec = cluster_spec or spec()
    keepers = STANDBYS if keepers is None else keepers
    decision, observation = step(observe(cluster_spec, state(**changes), keepers))
    assert decision.state.master == "pg2" and decision.state.operation is not None
    assert decision.state.operation.phase == "promoting"
    return observation


def test_the_default_deadline_comes_from_the_lease_and_the_grace() -> None:
    assert TimingSettings().promotion_deadline == DEADLINE
    assert TimingSettings(promotion_timeout=30.0).promotion_deadline == 30.0
    with pytest.raises(ValidationError, match="promotion_timeout"):
        TimingSettings(promotion_timeout=0.5)


def test_a_standby_that_never_promotes_is_abandoned_and_fenced() -> None:
    observation = promoting()
    assert decide(later(observation, DEADLINE - 0.1)).state is observation.state
    result = decide(later(observation, DEADLINE)).state
    assert result.master is None and roles(result)["pg2"] == "fenced"
    assert result.operation is not None and result.operation.phase == "fencing"
    assert result.operation.abandoned_targets == ("pg2",)
    assert result.operation.previous_master == "pg1"
    assert result.generation == ABANDONED_GENERATION
    assert result.operation.phase_generation == ABANDONED_GENERATION
    assert result.proxy_target.routes_nowhere
    assert result.no_promotion_reason is not None
    assert "promotion of pg2 abandoned" in result.no_promotion_reason
    assert result.operation.reason is not None
    assert "promotion of pg2 abandoned" in result.operation.reason


ABANDONED_TARGET_CASES = {
    "still reporting the promoting generation: wait": (
        standby("pg2", ack=PROMOTED_GENERATION),
        None,
    ),
    "completed its promotion late, fencing not seen yet: wait": (
        primary("pg2", ack=PROMOTED_GENERATION),
        None,
    ),
    "acknowledged but still accepting writes: wait": (
        primary("pg2", ack=ABANDONED_GENERATION),
        None,
    ),
    "acknowledged, stopped: promote another": (stopped("pg2", ack=ABANDONED_GENERATION), "pg3"),
    "acknowledged as a standby: promote another": (standby("pg2", ack=ABANDONED_GENERATION), "pg3"),
    "lease expired: promote another": (None, "pg3"),
}


@pytest.mark.parametrize(
    ("target", "promoted"), ABANDONED_TARGET_CASES.values(), ids=ABANDONED_TARGET_CASES.keys()
)
def test_nobody_is_promoted_before_the_abandoned_target_is_fenced(
    target: KeeperInfo | None, promoted: str | None
) -> None:
    _, abandoned = step(later(promoting(), DEADLINE))
    keepers = [standby("pg3", 99 * MIB)] + ([target] if target is not None else [])
    result = decide(later(abandoned, 0.5, keepers=keepers)).state
    assert result.master == promoted
    if promoted is not None:
        assert result.operation is not None and result.operation.target == promoted
        assert roles(result)["pg2"] == "fenced"


def test_the_published_history_says_the_first_promotion_was_abandoned() -> None:
    _, abandoned = step(later(promoting(), DEADLINE))
    keepers = [stopped("pg2", ack=ABANDONED_GENERATION), standby("pg3", 99 * MIB)]
    _, promoted = step(later(abandoned, 0.5, keepers=keepers))
    new_master = primary("pg3", ack=ABANDONED_GENERATION + 1, timeline=2)
    result = decide(later(promoted, 0.5, keepers=[stopped("pg2"), new_master])).state
    assert result.operation is None and result.proxy_target.master == "pg3"
    assert "promotion of pg2 abandoned" in result.history[-1].reason


def test_synchronous_mode_falls_back_on_the_old_masters_confirmed_set() -> None:
    sync_spec = spec(sync=True, max_standbys=2)
    observation = promoting(sync_spec, synchronous=(("pg2", "pg3"), ("pg2", "pg3")))
    assert observation.state is not None
    assert observation.state.synchronous_standbys.confirmed == ()  # restarted for pg2
    _, abandoned = step(later(observation, DEADLINE))
    assert abandoned.state is not None
    assert abandoned.state.synchronous_standbys.promotable == {"pg2", "pg3"}
    keepers = [stopped("pg2", ack=ABANDONED_GENERATION), standby("pg3", 99 * MIB)]
    assert decide(later(abandoned, 0.5, keepers=keepers)).state.master == "pg3"


def test_synchronous_mode_never_falls_back_on_an_unconfirmed_standby() -> None:
    sync_spec = spec(sync=True)
    observation = promoting(sync_spec, synchronous=(("pg2",), ("pg2",)))
    _, abandoned = step(later(observation, DEADLINE))
    keepers = [stopped("pg2", ack=ABANDONED_GENERATION), standby("pg3", 100 * MIB)]
    result = decide(later(abandoned, 0.5, keepers=keepers)).state
    assert result.master == "pg2"  # tried again: pg3 is not a confirmed synchronous standby
    assert result.operation is not None and result.operation.abandoned_targets == ()


def test_the_old_master_gets_its_role_back_when_nobody_else_can_be_promoted() -> None:
    observation = promoting(keepers=[standby("pg2", 100 * MIB)], standbys=("pg2",))
    _, abandoned = step(later(observation, DEADLINE))
    old_master = stopped("pg1", 100 * MIB, ack=ABANDONED_GENERATION)
    keepers = [old_master, stopped("pg2", ack=ABANDONED_GENERATION)]
    result = decide(later(abandoned, 0.5, keepers=keepers)).state
    assert result.master == "pg1" and result.operation is not None
    assert result.operation.target == "pg1"


def test_overdue_fencing_says_so_in_the_state_and_never_promotes() -> None:
    observation = promoting()
    _, abandoned = step(later(observation, DEADLINE))
    stuck = [standby("pg2", ack=PROMOTED_GENERATION), standby("pg3", 99 * MIB)]
    result = decide(later(abandoned, DEADLINE, keepers=stuck)).state
    assert result.master is None
    assert result.no_promotion_reason is not None
    assert result.no_promotion_reason.startswith("fencing has lasted longer than 11 s")
    assert "pg2, whose promotion was abandoned, has not acknowledged" in result.no_promotion_reason


def switchover_promoting() -> ClusterObservation:
    healthy = [primary("pg1", 100 * MIB), standby("pg2", 100 * MIB), standby("pg3", 100 * MIB)]
    first = observe(
        spec(), state(), healthy, [proxy("p1")], commands=[command("c1", "switchover", "pg2")]
    )
    _, observation = step(first)
    for acknowledged in (PROXY_GENERATION + 1, PROXY_GENERATION + 2):
        _, observation = step(later(observation, 0.1, proxies=[proxy("p1", acknowledged)]))
    end = 100 * MIB + 114
    keepers = [stopped("pg1", 100 * MIB, ack=GENERATION + 3), standby("pg2", end)]
    decision, observation = step(later(observation, 0.1, keepers=[*keepers, standby("pg3", end)]))
    assert decision.state.master == "pg2"
    return observation


@pytest.mark.parametrize(
    ("pg3_position", "promoted"), [(100 * MIB + 114, "pg3"), (100 * MIB, "pg1")]
)
def test_an_abandoned_switchover_promotes_only_without_losing_writes(
    pg3_position: int, promoted: str
) -> None:
    observation = switchover_promoting()
    decision, abandoned = step(later(observation, DEADLINE))
    assert decision.state.operation is not None and decision.state.operation.phase == "fencing"
    result = decision.state.command_results[-1]
    assert result.outcome == "abandoned"
    assert result.reason.startswith("promotion of pg2 abandoned: it did not report")
    generation = decision.state.generation
    keepers = [
        stopped("pg1", 100 * MIB, ack=generation),
        stopped("pg2", ack=generation),
        standby("pg3", pg3_position),
    ]
    assert decide(later(abandoned, 0.5, keepers=keepers)).state.master == promoted
