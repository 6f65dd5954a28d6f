"""decide() over many generated observation sequences (plain loops, seeded).

A small simulation plays keepers, proxies, faults, operator commands and
time against the decision function. After every decision it checks:
- never two masters; the generation moves by at most one;
- a new master is assigned only after every live proxy acknowledged the
  proxy generation that routes nowhere and no other keeper accepts writes;
  with synchronous replication a failover only promotes a promotable standby;
- at most one PostgreSQL accepts writes through any proxy (DESIGN §3.1), and
  at most one of the keepers that are not frozen: a keeper told to promote
  completes its promotion in some steps or never, also after it was told to
  fence it; a frozen keeper's PostgreSQL goes on accepting writes after its
  document disappeared (its proxies and its lease fence it, not the sentinel);
- a promotion never lasts longer than timing.promotion_deadline (plus one
  step of the simulation);
- deciding again on the same observation changes nothing (idempotence).
"""

from __future__ import annotations

import pytest

from rhizome.sentinel.decision import ClusterObservation, Decision, decide
from rhizome.store.state import ClusterState
from tests.unit.sentinel_builders import applied
from tests.unit.sentinel_simulation import (
    World,
    inject_faults,
    new_world,
    simulate_agents,
)

SEEDS = range(120)
STEPS = 70


def check_decision(observation: ClusterObservation, decision: Decision) -> None:
    before = observation.state or ClusterState()
    after = decision.state
    assert len(after.keepers_with_role("master")) <= 1
    assert after.generation - before.generation in (0, 1)
    new_master = after.master
    restored = before.operation is not None and before.operation.previous_master == new_master
    if (
        new_master is not None
        and new_master != before.master
        and before.initialized
        and not restored
    ):
        generation = after.proxy_target.proxy_generation
        assert after.proxy_target.routes_nowhere
        for proxy in observation.proxies.values():
            assert proxy.acknowledged_proxy_generation >= generation, (proxy, generation)
        for name, keeper in observation.keepers.items():
            assert name == new_master or not keeper.accepts_writes, name
        synchronous = observation.spec.synchronous_replication.enabled
        if synchronous and after.operation is not None and after.operation.kind == "failover":
            assert new_master in promotable_before(before)
    routed = after.proxy_target.master
    if routed is not None and routed != before.proxy_target.master:
        document = observation.keepers.get(routed)
        assert document is not None and document.accepts_writes
    again = decide(applied(observation, decision))
    assert again.state is decision.state, "deciding twice changed the state"
    operation = after.operation
    if operation is not None and operation.phase == "promoting":
        deadline = observation.spec.timing.promotion_deadline
        assert observation.now - operation.phase_started_at < deadline, operation


def promotable_before(before: ClusterState) -> frozenset[str]:
    """Promotable standbys: the state's, or the old master's set kept by the operation
    (a promotion restarts the set; an abandoned promotion puts the old one back)."""
    kept = before.operation.synchronous_standbys_before if before.operation else None
    return before.synchronous_standbys.promotable | (kept.promotable if kept else frozenset())


def check_world(world: World) -> None:
    """At most one PostgreSQL accepts writes through the proxies."""
    routed = {
        simulated.routes_to
        for simulated in world.proxies.values()
        if simulated.alive and simulated.routes_to is not None
    }
    writers = {name for name in routed if world.keepers[name].accepts_writes}
    assert len(writers) <= 1, writers
    running_writers = {
        keeper.name
        for keeper in world.keepers.values()
        if keeper.accepts_writes and keeper.frozen_at is None
    }
    assert len(running_writers) <= 1, running_writers


def run(seed: int) -> World:
    """Play one generated sequence, checking every decision and the world after it."""
    world = new_world(seed)
    for _ in range(STEPS):
        observation = world.observation()
        decision = decide(observation)
        check_decision(observation, decision)
        world.state = decision.state
        for name, _revision in decision.finished_commands:
            world.commands.pop(name, None)
        simulate_agents(world)
        check_world(world)
        inject_faults(world)
        check_world(world)
    return world


@pytest.mark.parametrize("seed", SEEDS)
def test_invariants_hold_over_generated_sequences(seed: int) -> None:
    world = run(seed)
    assert world.state is not None and world.state.initialized


def test_the_generated_sequences_exercise_every_operation() -> None:
    """Guards the property test against a simulation that stopped doing anything."""
    events: set[str] = set()
    for seed in range(40):
        final = run(seed).state
        assert final is not None
        events.update(f"history {entry.kind}" for entry in final.history)
        events.update(f"{result.kind} {result.outcome}" for result in final.command_results)
        reasons = [entry.reason for entry in final.history]
        reasons += [result.reason for result in final.command_results]
        if any("promotion of" in reason and "abandoned" in reason for reason in reasons):
            events.add("promotion abandoned")
        if final.synchronous_standbys.confirmed:
            events.add("synchronous set confirmed")
    expected = {
        "history failover",
        "history switchover",
        "switchover done",
        "switchover refused",
        "switchover abandoned",
        "failover done",
        "failover refused",
        "synchronous set confirmed",
        "promotion abandoned",
    }
    assert expected <= events, expected - events
