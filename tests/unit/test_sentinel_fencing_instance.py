"""Fencing acknowledged only by the instance that was master (KeeperInfo.instance_id).

Two hosts configured with one keeper name publish to one key: the second
one's "fenced" says nothing about the first one's PostgreSQL.
"""

from __future__ import annotations

from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.store.codec import encode_document
from rhizome.store.state import ClusterState, Operation
from tests.unit.sentinel_builders import (
    GENERATION,
    MIB,
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

FENCED_GENERATION = GENERATION + 1
NOWHERE = PROXY_GENERATION + 1
STANDBYS = [standby("pg2"), standby("pg3")]


def fencing_unhealthy_master(instance: str | None) -> ClusterObservation:
    """pg1 (reported by `instance`) crashed; the failover is fencing it."""
    keepers = [stopped("pg1", 100 * MIB, instance_id=instance), *STANDBYS]
    observation = observe(spec(), state(master_unhealthy_since=NOW - 2), keepers, [proxy("p1")])
    decision, after = step(observation)
    operation = decision.state.operation
    assert operation is not None and operation.phase == "fencing"
    assert operation.previous_master_instance == instance
    return after


def promoted_after(observation: ClusterObservation, pg1_instance: str | None) -> ClusterState:
    keepers = [stopped("pg1", 100 * MIB, ack=FENCED_GENERATION, instance_id=pg1_instance)]
    return decide(
        later(observation, 1.0, keepers=[*keepers, *STANDBYS], proxies=[proxy("p1", NOWHERE)])
    ).state


def test_fencing_acknowledged_by_the_instance_that_was_master_promotes() -> None:
    result = promoted_after(fencing_unhealthy_master("data-a"), "data-a")
    assert result.master == "pg2"


def test_fencing_acknowledged_by_another_instance_blocks_the_promotion() -> None:
    observation = fencing_unhealthy_master("data-a")
    result = promoted_after(observation, "data-b")
    assert result.master is None and result.operation is not None
    assert result.operation.phase == "fencing"
    notes = decide(
        later(
            observation,
            1.0,
            keepers=[stopped("pg1", 100 * MIB, ack=FENCED_GENERATION, instance_id="data-b")],
        )
    ).notes
    assert any(
        "keeper pg1 is now reported by another instance (data-b) than the one that was master "
        "(data-a); waiting for the instance that was master to report itself fenced or for "
        "its lease to expire" in note
        for note in notes
    )


def test_a_document_without_instance_id_does_not_prove_the_known_instance_fenced() -> None:
    result = promoted_after(fencing_unhealthy_master("data-a"), None)
    assert result.master is None


def test_legacy_keepers_without_instance_ids_are_accepted_as_before() -> None:
    assert promoted_after(fencing_unhealthy_master(None), None).master == "pg2"
    # an unknown instance at the start (older keeper, since upgraded): accepted too
    assert promoted_after(fencing_unhealthy_master(None), "data-b").master == "pg2"


def test_the_key_disappearing_is_still_accepted() -> None:
    observation = fencing_unhealthy_master("data-a")
    result = decide(later(observation, 1.0, keepers=STANDBYS, proxies=[])).state
    assert result.master == "pg2"


def test_switchover_remembers_the_instance_and_waits_for_it() -> None:
    healthy = [primary("pg1", instance_id="data-a"), standby("pg2"), standby("pg3")]
    first = observe(
        spec(), state(), healthy, [proxy("p1")], commands=[command("c1", "switchover", "pg2")]
    )
    decision, observation = step(first)
    assert decision.state.operation is not None
    assert decision.state.operation.previous_master_instance == "data-a"
    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", NOWHERE)]))
    decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", NOWHERE + 1)]))
    demoting = decision.state
    assert demoting.operation is not None and demoting.operation.phase == "demoting"
    end = 100 * MIB + 114
    imposter = stopped("pg1", 100 * MIB, ack=demoting.generation, instance_id="data-b")
    caught_up = [imposter, standby("pg2", end), standby("pg3", end)]
    waiting = decide(later(observation, 0.1, keepers=caught_up)).state
    assert waiting.master is None and waiting.operation is not None
    assert waiting.operation.phase == "demoting"
    assert waiting.no_promotion_reason is not None
    assert "another instance (data-b)" in waiting.no_promotion_reason
    # overdue, it is still not restored: the name would go to the other instance
    overdue = decide(later(observation, 20.0, keepers=caught_up)).state
    assert overdue.master is None


def test_a_failover_command_timing_out_restores_only_the_same_instance() -> None:
    keepers = [primary("pg1", instance_id="data-a"), *STANDBYS]
    first = observe(
        spec(), state(), keepers, [proxy("p1")], commands=[command("c1", "failover", timeout=3.0)]
    )
    _, observation = step(first)
    imposter = primary("pg1", instance_id="data-b")
    result = decide(later(observation, 5.0, keepers=[imposter, *STANDBYS])).state
    assert result.master is None  # not given back to another instance
    assert result.command_results[-1].outcome == "abandoned"


def test_the_new_fields_are_left_out_of_the_encoding_while_unused() -> None:
    operation = Operation(kind="failover", phase="fencing", started_at=NOW, phase_started_at=NOW)
    encoded = encode_document(state(operation=operation, master=None, standbys=()))
    for name in ("previous_master_instance", "abandoned_targets", "synchronous_standbys_before"):
        assert name.encode() not in encoded
    used = operation.with_changes(previous_master_instance="data-a")
    assert b'"previous_master_instance":"data-a"' in encode_document(
        state(operation=used, master=None, standbys=())
    )


def test_a_master_that_does_not_answer_its_keeper_blocks_the_promotion_until_killed() -> None:
    """P1 hole 10: not running (no answer) but not fenced is no fencing acknowledgement."""
    observation = fencing_unhealthy_master("data-a")
    frozen = stopped("pg1", 100 * MIB, ack=FENCED_GENERATION, instance_id="data-a", fenced=False)
    waiting = decide(
        later(observation, 1.0, keepers=[frozen, *STANDBYS], proxies=[proxy("p1", NOWHERE)])
    )
    assert waiting.state.master is None
    assert any("does not answer its keeper" in note for note in waiting.notes)
    assert promoted_after(observation, "data-a").master == "pg2"  # once the keeper killed it
