"""decide(): planned switchover, phase by phase, its refusals and its abandonment."""

from __future__ import annotations

import pytest

from rhizome.sentinel.decision import ClusterObservation, Decision, decide
from rhizome.spec import ClusterSpec
from rhizome.store.documents import KeeperInfo
from tests.unit.sentinel_builders import (
    GENERATION,
    MIB,
    NOW,
    PROXY_GENERATION,
    applied,
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

HEALTHY = [primary("pg1", 100 * MIB), standby("pg2", 100 * MIB), standby("pg3", 99 * MIB)]


def requested(
    target: str | None = "pg2",
    keepers: list[KeeperInfo] | None = None,
    cluster_spec: ClusterSpec | None = None,
    timeout: float | None = 30.0,
) -> ClusterObservation:
    return observe(
        cluster_spec or spec(),
        state(),
        HEALTHY if keepers is None else keepers,
        [proxy("p1")],
        commands=[command("cmd1", "switchover", target, timeout=timeout)],
    )


def blocking(observation: ClusterObservation) -> tuple[Decision, ClusterObservation]:
    """From a requested switchover through draining to blocking (p1 drained at once)."""
    decision, observation = step(observation)
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "draining"
    return step(later(observation, 0.1, proxies=[proxy("p1", PROXY_GENERATION + 1)]))


def test_switchover_end_to_end() -> None:
    decision, observation = step(requested())
    draining = decision.state
    assert draining.operation is not None and draining.operation.phase == "draining"
    assert draining.master == "pg1" and roles(draining)["pg1"] == "master"
    assert draining.proxy_target.master == "pg1" and draining.proxy_target.host == "db-pg1"
    assert draining.proxy_target.proxy_generation == PROXY_GENERATION + 1
    assert draining.generation == GENERATION + 1 and decision.finished_commands == ()
    assert decide(later(observation, 0.1)).state is draining  # p1 still drains

    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", 5)]))
    blocked = decision.state
    assert blocked.operation is not None and blocked.operation.phase == "blocking"
    assert blocked.master == "pg1" and roles(blocked)["pg1"] == "master"
    assert blocked.proxy_target.routes_nowhere
    assert blocked.proxy_target.proxy_generation == PROXY_GENERATION + 2
    assert blocked.generation == GENERATION + 2

    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", 6)]))
    demoting = decision.state
    assert demoting.operation is not None and demoting.operation.phase == "demoting"
    assert demoting.master is None and roles(demoting)["pg1"] == "fenced"
    assert demoting.generation == GENERATION + 3

    old_master = stopped("pg1", 101 * MIB, ack=GENERATION + 3)
    behind = [old_master, standby("pg2", 101 * MIB), standby("pg3", 99 * MIB)]
    decision, observation = step(later(observation, 0.1, keepers=behind))
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "demoting"  # pg2 lacks the checkpoint record

    end = 101 * MIB + 114  # the end of the shutdown checkpoint record
    caught_up = [old_master, standby("pg2", end), standby("pg3", end)]
    decision, observation = step(later(observation, 0.1, keepers=caught_up))
    promoting = decision.state
    assert promoting.operation is not None and promoting.operation.phase == "promoting"
    assert promoting.master == "pg2" and roles(promoting)["pg3"] == "standby>pg2"
    assert promoting.proxy_target.routes_nowhere

    new_master = primary("pg2", end, ack=GENERATION + 4, timeline=2)
    keepers = [old_master, new_master, standby("pg3", end, timeline=2)]
    decision, observation = step(later(observation, 0.6, keepers=keepers))
    routed = decision.state
    assert routed.operation is None and routed.master == "pg2"
    assert routed.proxy_target.master == "pg2"
    assert routed.proxy_target.proxy_generation == PROXY_GENERATION + 3
    assert roles(routed) == {"pg1": "standby>pg2", "pg2": "master", "pg3": "standby>pg2"}
    assert decision.finished_commands == (("cmd1", 77),)
    result = routed.command_results[-1]
    assert (result.outcome, result.old_master, result.new_master) == ("done", "pg1", "pg2")
    assert result.write_pause == pytest.approx(1.0)
    assert result.requested_at == NOW - 1
    entry = routed.history[-1]
    assert (entry.kind, entry.old_master, entry.new_master) == ("switchover", "pg1", "pg2")
    assert decide(observation).state is routed  # nothing left to do


def test_switchover_to_the_best_standby_when_no_target_is_named() -> None:
    keepers = [primary("pg1"), standby("pg2", 90 * MIB), standby("pg3", 99 * MIB)]
    result = decide(requested(None, keepers)).state
    assert result.operation is not None and result.operation.target == "pg3"


REFUSALS = {
    "target is the master": ("pg1", HEALTHY, spec(), "pg1 is the master already"),
    "target is not a keeper of the cluster": (
        "pg9",
        HEALTHY,
        spec(),
        "pg9 is not a standby of the cluster (not assigned)",
    ),
    "target lags beyond the bound": (
        "pg2",
        [primary("pg1", 100 * MIB), standby("pg2", 50 * MIB)],
        spec(),
        "pg2 is 50.0 MiB behind the master's last known position (bound 16.0 MiB)",
    ),
    "target is marked no_failover": (
        "pg2",
        HEALTHY,
        spec(keepers={"pg2": {"no_failover": True}}),
        "pg2 is marked no_failover",
    ),
    "target's keeper is gone": (
        "pg2",
        [primary("pg1"), standby("pg3")],
        spec(),
        "pg2 has no live keeper (its lease expired)",
    ),
    "no eligible standby at all": (
        None,
        [primary("pg1"), standby("pg2", running=False)],
        spec(),
        "no eligible standby: pg2 is not running; pg3 has no live keeper (its lease expired)",
    ),
    "the master is lost": (
        "pg2",
        [stopped("pg1"), standby("pg2")],
        spec(keepers={"pg1": {"maintenance": True}}),
        "master pg1 reports PostgreSQL not running: use a failover command",
    ),
}


@pytest.mark.parametrize(
    ("target", "keepers", "cluster_spec", "reason"), REFUSALS.values(), ids=REFUSALS.keys()
)
def test_switchover_refusals(
    target: str | None, keepers: list[KeeperInfo], cluster_spec: ClusterSpec, reason: str
) -> None:
    observation = observe(
        cluster_spec,
        state(master_unhealthy_since=NOW - 5),
        keepers,
        [proxy("p1")],
        commands=[command("cmd1", "switchover", target)],
    )
    decision = decide(observation)
    assert decision.state.operation is None
    assert decision.state.proxy_target == state().proxy_target
    assert decision.finished_commands == (("cmd1", 77),)
    result = decision.state.command_results[-1]
    assert (result.command, result.outcome, result.reason) == ("cmd1", "refused", reason)
    assert decision.state.generation == GENERATION
    assert decide(applied(observation, decision)).state is decision.state


def test_paused_cluster_keeps_the_command_pending() -> None:
    observation = requested(cluster_spec=spec(paused=True))
    decision = decide(observation)
    assert decision.state is observation.state
    assert decision.finished_commands == () and decision.notes[0].startswith(
        "the cluster is paused"
    )


def test_abandoned_while_draining_releases_the_held_clients() -> None:
    decision, observation = step(requested(timeout=5.0))
    decision, observation = step(later(observation, 5.0))  # p1 never finished draining
    released = decision.state
    assert released.operation is None and released.master == "pg1"
    assert released.proxy_target.master == "pg1"
    assert released.proxy_target.proxy_generation == PROXY_GENERATION + 1
    result = released.command_results[-1]
    assert result.outcome == "abandoned" and result.new_master == "pg1"
    assert result.reason == "timed out while draining; new clients released"
    assert decision.finished_commands == (("cmd1", 77),)


def test_abandoned_while_blocking_restores_routing_to_the_old_master() -> None:
    decision, observation = blocking(requested(timeout=5.0))
    assert decision.state.proxy_target.routes_nowhere
    decision, observation = step(later(observation, 4.9))  # p1 never acknowledged
    restored = decision.state
    assert restored.operation is None and restored.master == "pg1"
    assert restored.proxy_target.master == "pg1" and restored.proxy_target.host == "db-pg1"
    assert restored.proxy_target.proxy_generation == PROXY_GENERATION + 3
    assert restored.generation == GENERATION + 3
    result = restored.command_results[-1]
    assert result.outcome == "abandoned" and result.new_master == "pg1"
    assert result.write_pause == pytest.approx(5.0)
    assert "routing restored" in result.reason
    assert decision.finished_commands == (("cmd1", 77),)


def test_abandoned_while_demoting_gives_the_old_master_its_role_back() -> None:
    decision, observation = blocking(requested(timeout=5.0))
    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", 6)]))
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "demoting"
    lagging = [stopped("pg1", 120 * MIB, ack=13), standby("pg2", 100 * MIB), standby("pg3")]
    decision, observation = step(later(observation, 5.0, keepers=lagging))
    restoring = decision.state
    assert restoring.master == "pg1" and restoring.operation is not None
    assert (restoring.operation.phase, restoring.operation.target) == ("promoting", "pg1")
    assert restoring.operation.command is None
    assert restoring.command_results[-1].outcome == "abandoned"
    back = [primary("pg1", 120 * MIB, ack=14), standby("pg2", 100 * MIB), standby("pg3")]
    decision, observation = step(later(observation, 1.0, keepers=back))
    assert decision.state.operation is None and decision.state.proxy_target.master == "pg1"
    assert decision.state.history == ()  # the master did not change


def test_old_master_lost_while_demoting_becomes_a_failover() -> None:
    decision, observation = blocking(requested())
    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", 6)]))
    survivors = [standby("pg2", 100 * MIB), standby("pg3", 99 * MIB)]
    decision, observation = step(later(observation, 3.0, keepers=survivors))
    result = decision.state
    assert result.operation is not None and result.operation.kind == "failover"
    assert result.master == "pg2" and result.operation.phase == "promoting"
    assert result.command_results[-1].outcome == "abandoned"
    assert "failing over" in result.command_results[-1].reason


def test_switchover_target_failing_while_draining_abandons_it() -> None:
    decision, observation = step(requested())
    gone = [primary("pg1"), standby("pg3")]
    decision, observation = step(later(observation, 0.5, keepers=gone))
    assert decision.state.operation is None
    assert decision.state.proxy_target.master == "pg1"
    assert decision.state.command_results[-1].reason == (
        "target pg2 has no live keeper (its lease expired); new clients released"
    )


def test_switchover_target_failing_while_blocking_abandons_it() -> None:
    decision, observation = blocking(requested())
    gone = [primary("pg1"), standby("pg3")]
    decision, observation = step(later(observation, 0.5, keepers=gone))
    assert decision.state.operation is None
    assert decision.state.proxy_target.master == "pg1"
    assert "target pg2 has no live keeper" in decision.state.command_results[-1].reason


def test_another_command_during_a_switchover_is_refused() -> None:
    decision, observation = step(requested())
    second = command("cmd2", "switchover", "pg3", revision=90)
    observation = observe(
        observation.spec,
        observation.state,
        HEALTHY,
        [proxy("p1")],
        commands=[*observation.commands.values(), second],
    )
    decision = decide(observation)
    assert decision.finished_commands == (("cmd2", 90),)
    assert decision.state.command_results[-1].reason == (
        "a switchover is in progress (phase draining); try again when it has finished"
    )
    assert decision.state.operation is not None and decision.state.operation.command == "cmd1"


def demoting(timeout: float | None = 30.0) -> ClusterObservation:
    decision, observation = blocking(requested(timeout=timeout))
    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", 6)]))
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "demoting"
    return observation


GIVING_UP = {
    "the target fails while demoting": (
        [stopped("pg1", 101 * MIB, ack=13), standby("pg2", running=False), standby("pg3")],
        1.0,
        "target pg2 is not running while demoting; pg1 is restored as master",
    ),
    "the old master crashed instead of a clean shutdown": (
        [stopped("pg1", None, ack=13), standby("pg2"), standby("pg3")],
        1.0,
        "pg1 stopped without a clean shutdown; pg1 is restored as master",
    ),
    "demoting longer than proxy_hold_timeout without a command timeout": (
        [stopped("pg1", 101 * MIB, ack=13), standby("pg2"), standby("pg3")],
        15.0,
        "demoting lasted longer than proxy_hold_timeout (15 s); pg1 is restored as master",
    ),
}


@pytest.mark.parametrize(("keepers", "seconds", "reason"), GIVING_UP.values(), ids=GIVING_UP.keys())
def test_switchover_given_up_while_demoting_restores_the_old_master(
    keepers: list[KeeperInfo], seconds: float, reason: str
) -> None:
    observation = demoting(timeout=None)
    decision = decide(later(observation, seconds, keepers=keepers))
    result = decision.state
    assert result.master == "pg1" and result.operation is not None
    assert (result.operation.phase, result.operation.target) == ("promoting", "pg1")
    assert result.command_results[-1].reason == reason
    assert result.command_results[-1].outcome == "abandoned"


def test_blocking_longer_than_proxy_hold_timeout_restores_routing() -> None:
    decision, observation = blocking(requested(timeout=None))
    decision = decide(later(observation, 15.0))
    assert decision.state.operation is None and decision.state.proxy_target.master == "pg1"
    assert decision.state.command_results[-1].reason == (
        "blocking lasted longer than proxy_hold_timeout (15 s); routing restored"
    )
