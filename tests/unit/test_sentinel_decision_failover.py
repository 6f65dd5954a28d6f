"""decide(): detecting a lost master, choosing the candidate, fencing, promoting, routing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.spec import ClusterSpec
from rhizome.store.documents import KeeperInfo, ProxyInfo
from rhizome.store.state import ClusterState
from tests.unit.sentinel_builders import (
    GENERATION,
    MIB,
    NOW,
    PROXY_GENERATION,
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

STANDBYS = [standby("pg2", 100 * MIB), standby("pg3", 100 * MIB)]


@dataclass(frozen=True)
class LossCase:
    """A steady cluster observed once: does the sentinel start a failover?"""

    keepers: list[KeeperInfo]
    expected_phase: str | None
    cluster_spec: ClusterSpec = field(default_factory=spec)
    cluster_state: ClusterState = field(default_factory=state)
    reason: str | None = None


LOSS_CASES = {
    "lease expired, no failover_delay: fence at once": LossCase(STANDBYS, "fencing"),
    "lease expired, within failover_delay: wait": LossCase(
        STANDBYS, None, spec(timing={"failover_delay": 5.0})
    ),
    "lease expired longer than failover_delay: fence": LossCase(
        STANDBYS,
        "fencing",
        spec(timing={"failover_delay": 5.0}),
        state(missing_keepers_since={"pg1": NOW - 5.5}),
    ),
    "postgres crash seen for the first time: within the grace": LossCase(
        [stopped("pg1"), *STANDBYS], None
    ),
    "postgres down for less than master_recovery_grace: wait": LossCase(
        [stopped("pg1"), *STANDBYS], None, cluster_state=state(master_unhealthy_since=NOW - 0.5)
    ),
    "postgres down longer than master_recovery_grace: fence": LossCase(
        [stopped("pg1"), *STANDBYS], "fencing", cluster_state=state(master_unhealthy_since=NOW - 1)
    ),
    "running but unhealthy longer than the grace: fence": LossCase(
        [primary("pg1", healthy=False), *STANDBYS],
        "fencing",
        cluster_state=state(master_unhealthy_since=NOW - 2),
    ),
    "healthy master: nothing": LossCase([primary("pg1"), *STANDBYS], None),
    "master in maintenance: no automatic failover": LossCase(
        STANDBYS, None, spec(keepers={"pg1": {"maintenance": True}}), reason="in maintenance"
    ),
    "only lagging standbys: no failover, reason recorded": LossCase(
        [standby("pg2", 60 * MIB), standby("pg3", 70 * MIB)],
        None,
        cluster_state=state(master_flush_lsn=100 * MIB),
        reason="pg2 is 44.0 MiB behind the master's last known position (bound 16.0 MiB)",
    ),
    "no standby eligible (no_failover, maintenance)": LossCase(
        STANDBYS,
        None,
        spec(keepers={"pg2": {"no_failover": True}, "pg3": {"maintenance": True}}),
        reason="pg2 is marked no_failover; pg3 is in maintenance",
    ),
    "standbys of another database are never promoted": LossCase(
        [standby("pg2", system_identifier="42"), standby("pg3", running=False)],
        None,
        reason="pg2 holds another database (system identifier differs); pg3 is not running",
    ),
    "synchronous mode without a confirmed synchronous standby": LossCase(
        STANDBYS,
        None,
        spec(sync=True),
        state(synchronous=(("pg2",), ())),
        reason="pg2 is not a confirmed synchronous standby",
    ),
}


@pytest.mark.parametrize("case", LOSS_CASES.values(), ids=LOSS_CASES.keys())
def test_master_loss(case: LossCase) -> None:
    observation = observe(case.cluster_spec, case.cluster_state, case.keepers, [proxy("p1")])
    decision = decide(observation)
    result = decision.state
    if case.expected_phase is None:
        assert result.operation is None and result.master == "pg1"
        assert result.generation == GENERATION  # bookkeeping only
        assert result.proxy_target == case.cluster_state.proxy_target
    else:
        assert result.operation is not None and result.operation.phase == case.expected_phase
        assert result.master is None and result.generation == GENERATION + 1
        assert roles(result)["pg1"] == "fenced"
        assert result.proxy_target.routes_nowhere
        assert result.proxy_target.proxy_generation == PROXY_GENERATION + 1
        assert result.operation.phase_generation == GENERATION + 1
    if case.reason is None:
        assert result.no_promotion_reason is None
    else:
        assert result.no_promotion_reason is not None
        assert case.reason in result.no_promotion_reason


def test_first_sight_of_a_missing_or_crashed_master_is_remembered() -> None:
    missing = decide(observe(spec(timing={"failover_delay": 5.0}), state(), STANDBYS)).state
    assert missing.missing_keepers_since == {"pg1": NOW}
    crashed = decide(observe(spec(), state(), [stopped("pg1"), *STANDBYS])).state
    assert crashed.master_unhealthy_since == NOW and crashed.generation == GENERATION


def fencing(
    keepers: list[KeeperInfo] | None = None,
    cluster_spec: ClusterSpec | None = None,
    cluster_state: ClusterState | None = None,
) -> ClusterObservation:
    """The observation right after the sentinel fenced pg1 (its lease expired)."""
    keepers = STANDBYS if keepers is None else keepers
    first = observe(cluster_spec or spec(), cluster_state or state(), keepers, [proxy("p1")])
    decision, after = step(first)
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "fencing"
    return after


FENCED_GENERATION = GENERATION + 1
NOWHERE = PROXY_GENERATION + 1


@dataclass(frozen=True)
class PromotionCase:
    """The fencing phase observed again: which keeper is promoted, if any."""

    keepers: list[KeeperInfo]
    proxies: list[ProxyInfo]
    promoted: str | None
    cluster_spec: ClusterSpec = field(default_factory=spec)


PROMOTION_CASES = {
    "no proxy acknowledged yet: wait": PromotionCase(STANDBYS, [proxy("p1")], None),
    "one of two proxies acknowledged: wait": PromotionCase(
        STANDBYS, [proxy("p1", NOWHERE), proxy("p2")], None
    ),
    "every proxy acknowledged, old master's lease gone: promote": PromotionCase(
        STANDBYS, [proxy("p1", NOWHERE), proxy("p2", NOWHERE + 1)], "pg2"
    ),
    "no live proxy at all, old master gone: promote": PromotionCase(STANDBYS, [], "pg2"),
    "old master back but fencing not acknowledged: wait": PromotionCase(
        [stopped("pg1", ack=GENERATION), *STANDBYS], [proxy("p1", NOWHERE)], None
    ),
    "old master acknowledged but still a writable primary: wait": PromotionCase(
        [primary("pg1", ack=FENCED_GENERATION), *STANDBYS], [proxy("p1", NOWHERE)], None
    ),
    "old master stopped with fencing acknowledged: promote": PromotionCase(
        [stopped("pg1", ack=FENCED_GENERATION), *STANDBYS], [proxy("p1", NOWHERE)], "pg2"
    ),
    "another keeper reports a writable primary: wait": PromotionCase(
        [primary("pg3"), standby("pg2")], [proxy("p1", NOWHERE)], None
    ),
    "most advanced standby wins": PromotionCase(
        [standby("pg2", 90 * MIB), standby("pg3", 95 * MIB)], [], "pg3"
    ),
    "most advanced wins over priority": PromotionCase(
        [standby("pg2", 90 * MIB), standby("pg3", 95 * MIB)],
        [],
        "pg3",
        spec(keepers={"pg2": {"priority": 100}}),
    ),
    "priority breaks a tie": PromotionCase(
        [standby("pg2", 95 * MIB), standby("pg3", 95 * MIB)],
        [],
        "pg3",
        spec(keepers={"pg3": {"priority": 5}}),
    ),
    "the name breaks a full tie": PromotionCase(
        [standby("pg3", 95 * MIB), standby("pg2", 95 * MIB)], [], "pg2"
    ),
    "an unhealthy standby is skipped": PromotionCase(
        [standby("pg2", 99 * MIB), standby("pg3", 101 * MIB, healthy=False)], [], "pg2"
    ),
}


@pytest.mark.parametrize("case", PROMOTION_CASES.values(), ids=PROMOTION_CASES.keys())
def test_promotion_after_fencing(case: PromotionCase) -> None:
    start = fencing(cluster_spec=case.cluster_spec)
    observation = observe(case.cluster_spec, start.state, case.keepers, case.proxies, now=NOW + 1)
    result = decide(observation).state
    assert result.operation is not None
    if case.promoted is None:
        assert result.master is None and result.operation.phase == "fencing"
        assert result.generation == FENCED_GENERATION
        return
    assert result.master == case.promoted and result.operation.phase == "promoting"
    assert result.generation == FENCED_GENERATION + 1
    assert result.operation.phase_generation == FENCED_GENERATION + 1
    assert result.proxy_target.routes_nowhere  # routing waits for the new primary
    others = {name for name in ("pg2", "pg3") if name != case.promoted}
    assert {roles(result)[name] for name in others} == {f"standby>{case.promoted}"}
    assert roles(result)["pg1"] == "fenced"


def test_synchronous_mode_promotes_only_a_confirmed_synchronous_standby() -> None:
    sync_spec = spec(sync=True)
    keepers = [standby("pg2", 90 * MIB), standby("pg3", 99 * MIB)]
    cluster = state(synchronous=(("pg2",), ("pg2",)))
    start = fencing(keepers, sync_spec, cluster)
    result = decide(observe(sync_spec, start.state, keepers, [], now=NOW + 1)).state
    assert result.master == "pg2"  # pg3 is further ahead but not synchronous
    assert result.synchronous_standbys.requested == ("pg3",)
    assert result.synchronous_standbys.confirmed == ()


def test_lag_bound_uses_the_recorded_position_plus_the_recording_step() -> None:
    # recorded 100 MiB, step 4 MiB: pg2 at 86 MiB is 18 MiB behind 104 MiB > 16 MiB
    keepers = [standby("pg2", 86 * MIB), standby("pg3", 89 * MIB)]
    result = decide(observe(spec(), state(), keepers)).state
    assert result.operation is not None
    after = decide(observe(spec(), result, keepers, now=NOW + 1)).state
    assert after.master == "pg3"
    lagging = [standby("pg2", 86 * MIB), standby("pg3", 87 * MIB)]
    refused = decide(observe(spec(), state(), lagging)).state
    assert refused.operation is None
    assert refused.no_promotion_reason is not None
    assert "pg3 is 17.0 MiB behind" in refused.no_promotion_reason


def test_most_advanced_standby_raises_the_reference_position() -> None:
    keepers = [standby("pg2", 200 * MIB), standby("pg3", 150 * MIB)]
    start = fencing(keepers)
    result = decide(observe(spec(), start.state, keepers, now=NOW + 1)).state
    assert result.master == "pg2"
    assert result.operation is not None


def test_old_master_is_restored_when_nobody_is_eligible_any_more() -> None:
    start = fencing()
    keepers = [stopped("pg1", 100 * MIB, ack=FENCED_GENERATION), standby("pg2", running=False)]
    result = decide(
        observe(spec(), start.state, keepers, [proxy("p1", NOWHERE)], now=NOW + 1)
    ).state
    assert result.master == "pg1" and result.operation is not None
    assert result.operation.phase == "promoting" and result.operation.target == "pg1"
    assert result.history == ()


def test_no_candidate_at_promotion_time_keeps_fencing_with_a_reason() -> None:
    start = fencing()
    keepers = [standby("pg2", running=False)]
    result = decide(observe(spec(), start.state, keepers, [], now=NOW + 1)).state
    assert result.master is None and result.operation is not None
    assert result.operation.phase == "fencing"
    assert result.no_promotion_reason == (
        "no eligible standby: pg2 is not running; pg3 has no live keeper (its lease expired)"
    )


def promoting() -> ClusterObservation:
    start = fencing()
    decision, after = step(observe(spec(), start.state, STANDBYS, [], now=NOW + 1))
    assert decision.state.master == "pg2"
    return after


def test_route_once_the_new_master_reports_a_primary() -> None:
    start = promoting()
    promoted_generation = FENCED_GENERATION + 1
    new_master = primary("pg2", 100 * MIB, ack=promoted_generation, timeline=2)
    result = decide(observe(spec(), start.state, [new_master], [], now=NOW + 2)).state
    assert result.operation is None and result.master == "pg2"
    assert result.proxy_target.master == "pg2" and result.proxy_target.host == "db-pg2"
    assert result.proxy_target.proxy_generation == NOWHERE + 1
    assert result.master_timeline == 2 and result.master_flush_lsn == 100 * MIB
    assert result.generation == promoted_generation + 1
    entry = result.history[-1]
    assert (entry.kind, entry.old_master, entry.new_master) == ("failover", "pg1", "pg2")
    assert entry.generation == result.generation
    assert "stopped reporting" in entry.reason


def test_no_route_before_the_promotion_generation_is_acknowledged() -> None:
    start = promoting()
    stale = primary("pg2", ack=FENCED_GENERATION)
    result = decide(observe(spec(), start.state, [stale, *STANDBYS[1:]], [], now=NOW + 2)).state
    assert result is start.state


def test_new_master_lost_while_promoting_starts_another_failover() -> None:
    start = promoting()
    keepers = [standby("pg3", 100 * MIB)]
    result = decide(observe(spec(), start.state, keepers, [], now=NOW + 2)).state
    assert result.operation is not None and result.operation.previous_master == "pg2"
    assert roles(result)["pg2"] == "fenced" and roles(result)["pg1"] == "fenced"
    # no live proxy and pg2's keeper gone: pg3 is promoted within the same decision
    assert result.master == "pg3" and result.operation.phase == "promoting"


def test_a_restored_old_master_is_given_time_to_start() -> None:
    start = fencing()
    keepers = [stopped("pg1", 100 * MIB, ack=FENCED_GENERATION), standby("pg2", running=False)]
    restoring, observation = step(observe(spec(), start.state, keepers, now=NOW + 1))
    assert restoring.state.master == "pg1"
    healthy_again = [stopped("pg1", 100 * MIB, ack=FENCED_GENERATION + 1), standby("pg2")]
    waiting = decide(later(observation, 2.0, keepers=healthy_again)).state
    assert waiting.master == "pg1"  # within master_recovery_grace + keeper_lease_ttl
    given_up = decide(later(observation, 6.0, keepers=healthy_again)).state
    assert given_up.master is None and given_up.operation is not None
    assert given_up.operation.previous_master == "pg1"


RECHECK_CASES = {
    "lease expired within failover_delay: again when it has passed": (
        STANDBYS,
        spec(timing={"failover_delay": 5.0}),
        state(missing_keepers_since={"pg1": NOW - 2}),
        NOW + 3,
    ),
    "postgres down within master_recovery_grace: again when the grace ends": (
        [stopped("pg1"), *STANDBYS],
        spec(),
        state(master_unhealthy_since=NOW - 0.25),
        NOW + 0.75,
    ),
    "healthy cluster: no timer runs": ([primary("pg1"), *STANDBYS], spec(), state(), math.inf),
}


@pytest.mark.parametrize("case", RECHECK_CASES.values(), ids=RECHECK_CASES.keys())
def test_a_running_timer_asks_to_decide_again_when_it_runs_out(case) -> None:
    """The leader sleeps between store changes until recheck_at: a timer it does not
    report would delay the failover it guards until the sentinel's next idle pass."""
    keepers, cluster_spec, cluster_state, recheck_at = case
    decision = decide(observe(cluster_spec, cluster_state, keepers, [proxy("p1")]))
    assert decision.state.operation is None
    assert decision.recheck_at == pytest.approx(recheck_at)
    if recheck_at != math.inf:
        decided_again = decide(
            later(observe(cluster_spec, decision.state, keepers, [proxy("p1")]), recheck_at - NOW)
        )
        assert decided_again.state.operation is not None, "nothing happened when the timer ran out"
