"""decide(): forced failover commands, command bookkeeping and pause."""

from __future__ import annotations

from rhizome.sentinel.decision import decide
from rhizome.store.state import COMMAND_RESULTS_LIMIT, CommandResult
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

NOWHERE = PROXY_GENERATION + 1
LAGGING = [standby("pg2", 20 * MIB), standby("pg3", 10 * MIB)]


def test_forced_failover_to_a_named_standby_skips_the_lag_bound_but_not_fencing() -> None:
    keepers = [primary("pg1", 100 * MIB), *LAGGING]
    first = observe(
        spec(), state(), keepers, [proxy("p1")], commands=[command("f1", "failover", "pg3")]
    )
    decision, observation = step(first)
    fencing = decision.state
    assert fencing.operation is not None and fencing.operation.target == "pg3"
    assert fencing.master is None and fencing.proxy_target.routes_nowhere
    # the old master is alive: it must acknowledge its fencing, proxies too
    decision, observation = step(later(observation, 0.5))
    assert decision.state.master is None
    fenced_old_master = stopped("pg1", 100 * MIB, ack=GENERATION + 1)
    decision, observation = step(
        later(observation, 0.5, keepers=[fenced_old_master, *LAGGING], proxies=[proxy("p1")])
    )
    assert decision.state.master is None  # p1 has not acknowledged
    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", NOWHERE)]))
    assert decision.state.master == "pg3"  # 90 MiB behind, the operator's choice
    promoted = primary("pg3", 10 * MIB, ack=GENERATION + 2, timeline=2)
    decision, observation = step(
        later(observation, 0.5, keepers=[fenced_old_master, standby("pg2", 20 * MIB), promoted])
    )
    assert decision.state.operation is None and decision.state.master == "pg3"
    result = decision.state.command_results[-1]
    assert (result.outcome, result.new_master, result.kind) == ("done", "pg3", "failover")
    assert decision.finished_commands == (("f1", 77),)


def test_forced_failover_in_synchronous_mode_refuses_a_non_synchronous_target() -> None:
    observation = observe(
        spec(sync=True),
        state(synchronous=(("pg2",), ("pg2",))),
        [primary("pg1"), standby("pg2"), standby("pg3")],
        commands=[command("f1", "failover", "pg3")],
    )
    decision = decide(observation)
    assert decision.state.operation is None and decision.state.master == "pg1"
    result = decision.state.command_results[-1]
    assert (result.outcome, result.reason) == (
        "refused",
        "pg3 is not a confirmed synchronous standby",
    )


def test_failover_command_without_target_fences_a_healthy_master() -> None:
    keepers = [primary("pg1"), standby("pg2", 99 * MIB), standby("pg3", 100 * MIB)]
    observation = observe(spec(), state(), keepers, commands=[command("f1", "failover")])
    decision, observation = step(observation)
    assert decision.state.operation is not None and decision.state.operation.target is None
    assert roles(decision.state)["pg1"] == "fenced"
    fenced = stopped("pg1", 100 * MIB, ack=GENERATION + 1)
    decision = decide(later(observation, 1.0, keepers=[fenced, *keepers[1:]]))
    assert decision.state.master == "pg3"


def test_failover_command_joins_the_automatic_failover_of_a_lost_master() -> None:
    keepers = [standby("pg2", 99 * MIB), standby("pg3", 100 * MIB)]
    observation = observe(spec(), state(), keepers, commands=[command("f1", "failover")])
    decision = decide(observation)
    # pg1's keeper is gone and no proxy is live: fence and promote in one decision
    assert decision.state.master == "pg3"
    assert decision.state.operation is not None and decision.state.operation.command == "f1"


def test_failover_command_joins_a_stuck_automatic_failover() -> None:
    decision, observation = step(observe(spec(), state(), LAGGING, [proxy("p1")]))
    # the master is gone: automatic failover refused, the reason says why
    assert decision.state.no_promotion_reason is not None
    forced = command("f1", "failover", "pg2")
    observation = observe(spec(), decision.state, LAGGING, [proxy("p1")], commands=[forced])
    decision = decide(observation)
    assert decision.state.operation is not None and decision.state.operation.target == "pg2"
    assert decision.state.master is None and decision.state.proxy_target.routes_nowhere


def test_failover_command_timing_out_restores_a_live_old_master() -> None:
    keepers = [primary("pg1"), *LAGGING]
    first = observe(
        spec(),
        state(),
        keepers,
        [proxy("p1")],
        commands=[command("f1", "failover", "pg2", timeout=3.0)],
    )
    decision, observation = step(first)
    fenced = stopped("pg1", 100 * MIB, ack=GENERATION + 1)
    decision, observation = step(later(observation, 3.0, keepers=[fenced, *LAGGING]))
    restored = decision.state
    assert restored.master == "pg1" and restored.operation is not None
    assert restored.operation.phase == "promoting" and restored.operation.command is None
    assert restored.command_results[-1].outcome == "abandoned"
    assert decision.finished_commands == (("f1", 77),)


def test_failover_command_timing_out_without_old_master_goes_on_automatically() -> None:
    first = observe(
        spec(),
        state(),
        LAGGING,
        [proxy("p1")],
        commands=[command("f1", "failover", "pg2", timeout=3.0)],
    )
    decision, observation = step(first)
    decision, observation = step(later(observation, 3.0))
    result = decision.state
    assert result.operation is not None and result.operation.command is None
    assert result.operation.target is None and result.master is None
    assert "automatic failover" in result.command_results[-1].reason


def test_failover_command_to_the_master_is_refused() -> None:
    observation = observe(
        spec(), state(), [primary("pg1"), *LAGGING], commands=[command("f1", "failover", "pg1")]
    )
    decision = decide(observation)
    assert decision.state.command_results[-1].reason == "pg1 is the master already"


def test_a_finished_command_still_stored_is_only_deleted() -> None:
    observation = observe(
        spec(),
        state(),
        [primary("pg1"), *LAGGING],
        commands=[command("f1", "failover", "pg1")],
    )
    decision = decide(observation)
    again = decide(
        observe(
            spec(),
            decision.state,
            [primary("pg1"), *LAGGING],
            commands=observation.commands.values(),
        )
    )
    assert again.state is decision.state
    assert again.finished_commands == (("f1", 77),)


def test_command_results_keep_the_most_recent() -> None:
    old = tuple(
        CommandResult(
            command=f"old{number}",
            kind="switchover",
            outcome="done",
            reason="done",
            finished_at=float(number),
        )
        for number in range(COMMAND_RESULTS_LIMIT)
    )
    observation = observe(
        spec(),
        state(command_results=old),
        [primary("pg1"), *LAGGING],
        commands=[command("f1", "failover", "pg1")],
    )
    results = decide(observation).state.command_results
    assert len(results) == COMMAND_RESULTS_LIMIT
    assert results[0].command == "old1" and results[-1].command == "f1"


def test_paused_cluster_takes_no_automatic_action() -> None:
    observation = observe(spec(paused=True), state(), LAGGING, [proxy("p1")])
    decision = decide(observation)
    assert decision.state is observation.state and decision.finished_commands == ()


def test_paused_cluster_freezes_an_operation_in_progress() -> None:
    decision, observation = step(observe(spec(), state(), [standby("pg2"), standby("pg3")]))
    assert decision.state.operation is not None
    paused = later(observation, 10.0)
    paused = applied(paused, decision)
    frozen = decide(observe(spec(paused=True), decision.state, [standby("pg2")], now=NOW + 10))
    assert frozen.state is decision.state


def test_commands_are_refused_before_initialisation() -> None:
    observation = observe(spec(), None, [], commands=[command("s1", "switchover")])
    decision = decide(observation)
    assert decision.state.command_results[-1].reason == "the cluster is not initialised yet"
    assert decision.finished_commands == (("s1", 77),)


def test_commands_are_started_oldest_first() -> None:
    keepers = [primary("pg1"), standby("pg2"), standby("pg3")]
    newer = command("a-new", "switchover", "pg3", requested_at=NOW - 1, revision=2)
    older = command("z-old", "switchover", "pg2", requested_at=NOW - 5, revision=1)
    decision = decide(observe(spec(), state(), keepers, [proxy("p1")], commands=[newer, older]))
    assert decision.state.operation is not None
    assert decision.state.operation.command == "z-old"
    assert decision.finished_commands == (("a-new", 2),)
    assert roles(decision.state)["pg1"] == "master"
